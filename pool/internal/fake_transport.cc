#include "pool/internal/fake_transport.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace mp {
namespace pool_internal {

absl::StatusOr<WorkerId> FakeTransport::StartWorker(uint32_t generation) {
  std::unique_lock<std::mutex> lock(mu_);
  ++starts_waiting_;
  cv_.notify_all();
  cv_.wait(lock, [this] { return !hold_starts_; });
  --starts_waiting_;
  if (fail_starts_ > 0) {
    --fail_starts_;
    return absl::ResourceExhaustedError("fake: cannot start a worker");
  }
  WorkerId id = next_++;
  live_.insert(id);
  generation_[id] = generation;
  ++started_;
  return id;
}

absl::Status FakeTransport::Send(WorkerId worker, uint64_t task_id,
                                 uint32_t function, absl::string_view payload) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!live_.count(worker)) return absl::OutOfRangeError("fake: worker gone");
  if (function >= generation_[worker]) {
    return absl::InternalError("fake: function newer than the worker");
  }
  Sent s{worker, task_id, function, std::string(payload)};
  if (auto_run_) {
    to_run_.push_back(std::move(s));
  } else {
    sent_.push_back(std::move(s));
  }
  woken_ = true;
  cv_.notify_all();
  return absl::OkStatus();
}

void FakeTransport::StopWorker(WorkerId worker) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!live_.erase(worker)) return;
  stopped_.push_back(worker);
  TransportEvent ev;
  ev.kind = TransportEvent::Kind::kWorkerExited;
  ev.worker = worker;
  events_.push_back(std::move(ev));
  cv_.notify_all();
}

void FakeTransport::KillWorker(WorkerId worker) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!live_.erase(worker)) return;
  TransportEvent ev;
  ev.kind = TransportEvent::Kind::kWorkerExited;
  ev.worker = worker;
  ev.status = absl::UnavailableError("worker lost: killed");
  events_.push_back(std::move(ev));
  cv_.notify_all();
}

absl::Status FakeTransport::Poll(absl::Duration timeout,
                                 std::vector<TransportEvent>* events) {
  return PollAs(&woken_, timeout, events);
}

absl::Status FakeTransport::PollForDriver(absl::Duration timeout,
                                          std::vector<TransportEvent>* events) {
  return PollAs(&driver_woken_, timeout, events);
}

void FakeTransport::WakeDriver() {
  std::lock_guard<std::mutex> lock(mu_);
  driver_woken_ = true;
  cv_.notify_all();
}

absl::Status FakeTransport::PollAs(bool* woken, absl::Duration timeout,
                                   std::vector<TransportEvent>* events) {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [&] { return *woken || !events_.empty() || !to_run_.empty(); };
  if (timeout == absl::InfiniteDuration()) {
    cv_.wait(lock, ready);
  } else {
    cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), ready);
  }
  *woken = false;
  while (!to_run_.empty()) {
    Sent s = std::move(to_run_.front());
    to_run_.pop_front();
    if (!live_.count(s.worker)) continue;
    TransportEvent ev;
    ev.worker = s.worker;
    ev.task_id = s.task_id;
    TaskFailure failure;
    ChunkRunner* runner = table_->Get(s.function);
    ev.ok = runner->Run(s.payload, &ev.payload, &failure);
    if (!ev.ok) {
      failure.pid = WorkerPid(s.worker);
      ev.payload = Encode(failure);
    }
    events->push_back(std::move(ev));
  }
  while (!events_.empty()) {
    events->push_back(std::move(events_.front()));
    events_.pop_front();
  }
  return absl::OkStatus();
}

void FakeTransport::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

std::string FakeTransport::WorkerName(WorkerId worker) {
  return absl::StrCat("pid ", WorkerPid(worker));
}

void FakeTransport::Push(TransportEvent ev) {
  std::lock_guard<std::mutex> lock(mu_);
  events_.push_back(std::move(ev));
  cv_.notify_all();
}

std::vector<FakeTransport::Sent> FakeTransport::WaitSent(size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::seconds(10), [&] { return sent_.size() >= n; });
  std::vector<Sent> out;
  while (!sent_.empty() && out.size() < n) {
    out.push_back(std::move(sent_.front()));
    sent_.pop_front();
  }
  return out;
}

void FakeTransport::Complete(const Sent& task, std::string payload, bool ok) {
  TransportEvent ev;
  ev.worker = task.worker;
  ev.task_id = task.task_id;
  ev.ok = ok;
  ev.payload = std::move(payload);
  Push(std::move(ev));
}

void FakeTransport::Die(WorkerId worker, std::string reason,
                        uint64_t running_task, bool running_known) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(worker);
  }
  TransportEvent ev;
  ev.kind = TransportEvent::Kind::kWorkerExited;
  ev.worker = worker;
  ev.status = absl::UnavailableError(std::move(reason));
  ev.running_task = running_task;
  ev.running_known = running_known;
  Push(std::move(ev));
}

void FakeTransport::FailInit(WorkerId worker, std::string reason) {
  TransportEvent ev;
  ev.kind = TransportEvent::Kind::kInitFailed;
  ev.worker = worker;
  ev.status = absl::UnknownError(std::move(reason));
  Push(std::move(ev));
}

void FakeTransport::FailNextStarts(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_starts_ = n;
}

void FakeTransport::HoldStarts() {
  std::lock_guard<std::mutex> lock(mu_);
  hold_starts_ = true;
}

void FakeTransport::ReleaseStarts() {
  std::lock_guard<std::mutex> lock(mu_);
  hold_starts_ = false;
  cv_.notify_all();
}

int FakeTransport::starts_waiting() {
  std::lock_guard<std::mutex> lock(mu_);
  return starts_waiting_;
}

std::vector<WorkerId> FakeTransport::LiveWorkers() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::vector<WorkerId>(live_.begin(), live_.end());
}

int FakeTransport::started() {
  std::lock_guard<std::mutex> lock(mu_);
  return started_;
}

std::vector<WorkerId> FakeTransport::stopped() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopped_;
}

}  // namespace pool_internal
}  // namespace mp
