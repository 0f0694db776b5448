#include "pool/internal/core.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <optional>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "ipc/codec.h"
#include "process/spin.h"

namespace mp {
namespace pool_internal {
namespace {

// How long a driver polls without sleeping before it blocks: a little more
// than a short task's round trip, so that neither the result nor the thread
// waiting for it needs a wake-up from the scheduler. Zero (no spinning) when
// this process may run on one CPU only, where spinning would only delay the
// worker.
absl::Duration DriveSpin() {
  static const absl::Duration spin = mp::MayUseSeveralCpus()
                                         ? absl::Microseconds(50)
                                         : absl::ZeroDuration();
  return spin;
}

// When the handler wakes up (at least this often while it leaves results to
// drivers) and no driver came since its last wake-up, it polls the results
// itself again. Bounds the delay of a result nobody waits for on a thread
// (e.g. one with only callbacks) submitted right after a run of Get()s.
constexpr absl::Duration kHandBackTick = absl::Milliseconds(1);

}  // namespace

Core::Core(CoreOptions options, std::unique_ptr<FunctionTable> table,
           std::unique_ptr<Transport> transport)
    : options_(options),
      table_(std::move(table)),
      transport_(std::move(transport)) {}

Core::~Core() {
  Terminate();
  Join().IgnoreError();
}

absl::Status Core::Start() {
  std::lock_guard<std::mutex> join_lock(join_mu_);
  if (handler_.joinable() || joined_) {
    return absl::FailedPreconditionError("pool already started");
  }
  // Workers have PR_SET_PDEATHSIG = SIGKILL, which Linux sends when the
  // *thread* that forked them exits. The main thread lives as long as the
  // process, so it forks the first workers itself, before the pool has a
  // thread of its own (a fork then copies fewer mappings and needs no TLB
  // shootdown of a thread running on another CPU). Any other thread may be
  // short-lived: the handler thread, which outlives every worker, forks
  // them (and all replacements), and this thread waits for the outcome.
  if (::gettid() == ::getpid()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      StartFirstWorkersLocked();
    }
    handler_ = std::thread([this] { HandlerLoop(); });
    return start_status_;
  }
  bool first_started = false;
  std::condition_variable started_cv;
  handler_ = std::thread([this, &first_started, &started_cv] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      StartFirstWorkersLocked();
      first_started = true;
      started_cv.notify_all();  // under mu_: `started_cv` lives on Start()'s stack
    }
    HandlerLoop();
  });
  std::unique_lock<std::mutex> lock(mu_);
  started_cv.wait(lock, [&] { return first_started; });
  return start_status_;
}

void Core::StartFirstWorkersLocked() {
  for (int i = 0; i < options_.processes; ++i) {
    if (!StartOneWorker()) break;  // with fewer, the handler tries again
  }
  if (workers_.empty()) {
    start_status_ =
        broken_.ok() ? absl::InternalError("no worker started") : broken_;
    closed_ = true;
    terminating_ = true;
  }
}

uint32_t Core::AddFunction(std::shared_ptr<ChunkRunner> runner,
                           std::pair<const void*, uintptr_t> key) {
  std::lock_guard<std::mutex> lock(mu_);
  return table_->Add(std::move(runner), key);
}

uint32_t Core::AddFunction(
    const std::function<std::shared_ptr<ChunkRunner>()>& make,
    std::pair<const void*, uintptr_t> key) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<uint32_t> known = table_->Find(key);
  if (known.has_value()) return *known;
  return table_->Add(make(), key);
}

absl::StatusOr<std::vector<uint64_t>> Core::Submit(
    std::vector<TaskSpec> specs) {
  std::vector<uint64_t> ids;
  ids.reserve(specs.size());
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_ || terminating_) {
    return absl::FailedPreconditionError("pool is not running (closed or terminated)");
  }
  if (!broken_.ok()) return broken_;
  // Tasks that are out while nobody drives: the handler reads their results.
  if (results_to_driver_ && !tasks_.empty() && !driver_active_.load()) {
    HandBackResultsLocked();
  }
  for (TaskSpec& spec : specs) {
    if (spec.function >= table_->size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no function ", spec.function, " in the pool's table"));
    }
    if (spec.payload.size() > transport_->MaxPayload()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the arguments of task ", spec.base_index, " take ",
          spec.payload.size(), " bytes, more than one message carries (",
          transport_->MaxPayload(), ")"));
    }
  }
  for (TaskSpec& spec : specs) {
    uint64_t id = next_id_++;
    Task& t = tasks_[id];
    t.id = id;
    t.function = spec.function;
    t.payload = std::move(spec.payload);
    t.base_index = spec.base_index;
    t.done = std::move(spec.done);
    t.done_bare = std::move(spec.done_bare);
    pending_.push_back(id);
    ++pending_functions_[t.function];
    ids.push_back(id);
  }
  // Send now only what an idle worker waits for; what busy workers get is
  // flushed by the handler with their next results (fewer, larger writes).
  if (Dispatch()) transport_->Flush();
  if (!pending_.empty()) transport_->Wake();
  return ids;
}

void Core::RemovePending(uint64_t id) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  auto fit = pending_functions_.find(it->second.function);
  if (fit != pending_functions_.end() && --fit->second == 0) {
    pending_functions_.erase(fit);
  }
}

bool Core::Cancel(uint64_t task_id) {
  Done done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end() || it->second.worker != 0) return false;
    RemovePending(task_id);
    done = std::move(it->second.done);
    tasks_.erase(it);  // its id stays in pending_ and is skipped
  }
  std::vector<Completion> completions;
  completions.emplace_back(std::move(done), absl::CancelledError("task cancelled"));
  RunCompletions(&completions);
  return true;
}

int Core::CancelPending() {
  std::vector<Done> dones;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint64_t id : pending_) {
      auto it = tasks_.find(id);
      if (it == tasks_.end() || it->second.worker != 0) continue;
      RemovePending(id);
      dones.push_back(std::move(it->second.done));
      tasks_.erase(it);
    }
    pending_.clear();
  }
  std::vector<Completion> completions;
  for (Done& d : dones) {
    completions.emplace_back(std::move(d), absl::CancelledError("task cancelled"));
  }
  RunCompletions(&completions);
  return static_cast<int>(dones.size());
}

bool Core::IsSent(uint64_t task_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(task_id);
  return it != tasks_.end() && it->second.worker != 0;
}

void Core::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  HandBackResultsLocked();
  if (tasks_.empty() && !terminating_ && broken_.ok() && !workers_.empty()) {
    // Nothing left to run: stop the workers now rather than through a
    // wake-up of the handler thread, which wakes on their exits anyway.
    for (Worker& w : workers_) {
      if (!w.stopping) {
        w.stopping = true;
        transport_->StopWorker(w.id);
      }
    }
    return;
  }
  transport_->Wake();
}

void Core::HandBackResultsLocked() {
  if (!results_to_driver_) return;
  results_to_driver_ = false;
  transport_->LeaveResultsToDriver(false);
  transport_->Wake();
}

void Core::Terminate() {
  std::vector<Completion> completions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    HandBackResultsLocked();
    if (!terminating_) {
      terminating_ = true;
      FailAll(absl::CancelledError("pool terminated"), &completions);
      for (Worker& w : workers_) {
        w.stopping = true;
        transport_->KillWorker(w.id);
      }
    }
    transport_->Wake();
  }
  RunCompletions(&completions);
}

void Core::RunCompletions(std::vector<Completion>* completions,
                          bool wake_driver) {
  for (Completion& c : *completions) {
    if (c.bare) {
      c.bare(*std::move(c.result));
    } else if (c.done) {
      c.done(std::move(c.result));
    }
  }
  if (!wake_driver || completions->empty()) return;
  // Pairs with the fence in Drive(): either the driver sees the result
  // ready, or we see it active and wake it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (driver_active_.load()) transport_->WakeDriver();
}

Core::DriveResult Core::Drive(const std::function<bool()>& ready,
                              absl::Duration timeout) {
  // A callback run by this driver may wait for another result: it must not
  // try to drive again (try_lock on a mutex we hold is undefined).
  static thread_local bool in_drive = false;
  std::unique_lock<std::mutex> driving;
  if (!in_drive) driving = std::unique_lock<std::mutex>(drive_mu_, std::try_to_lock);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // With many tasks in flight, results arrive in batches anyway, and two
    // pollers would only wake each other: leave it to the handler. Likewise
    // when another thread drives, or this one does and runs a callback
    // (this one then sleeps on its result, which the handler must read).
    if (!driving.owns_lock() ||
        tasks_.size() > static_cast<size_t>(options_.processes)) {
      HandBackResultsLocked();
      return DriveResult::kBusy;
    }
    ++drives_;
    if (!results_to_driver_ && !closed_) {
      // The handler stops watching results from its next poll on, which
      // must have a timeout (kHandBackTick): wake it to start one. This
      // happens once per run of drives, not per drive.
      results_to_driver_ = true;
      transport_->LeaveResultsToDriver(true);
      transport_->Wake();
    }
  }
  in_drive = true;
  driver_active_.store(true);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const absl::Time start = absl::Now();
  const absl::Time deadline = timeout == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : start + timeout;
  const absl::Time spin_until = start + DriveSpin();
  DriveResult result = DriveResult::kTimeout;
  std::vector<TransportEvent> events;
  std::vector<Completion> completions;
  for (;;) {
    if (ready()) {
      result = DriveResult::kReady;
      break;
    }
    const absl::Time now = absl::Now();
    absl::Duration left = deadline == absl::InfiniteFuture()
                              ? absl::InfiniteDuration()
                              : deadline - now;
    if (left <= absl::ZeroDuration()) break;
    // Spin first (poll without sleeping), then block.
    if (now < spin_until) left = absl::ZeroDuration();
    events.clear();
    completions.clear();
    absl::Status polled = transport_->PollForDriver(left, &events);
    if (!polled.ok()) {
      transport_->Wake();  // the handler deals with it
      result = DriveResult::kBusy;
      break;
    }
    if (events.empty()) {
      // While spinning, let a thread that shares this CPU (the worker, on a
      // busy machine) run first.
      if (left == absl::ZeroDuration()) sched_yield();
      continue;
    }
    bool wake_handler = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (TransportEvent& ev : events) {
        if (ev.kind != TransportEvent::Kind::kResult) wake_handler = true;
        HandleEvent(ev, &completions);
      }
      wake_handler |= Maintain(&completions, /*may_start_workers=*/false);
      transport_->Flush();
      wake_handler |= closed_ || terminating_ || !broken_.ok();
    }
    RunCompletions(&completions, /*wake_driver=*/false);
    if (wake_handler) transport_->Wake();
  }
  {
    // Results still out that this driver leaves behind go to the handler
    // (their waiters, if any, sleep on them).
    std::lock_guard<std::mutex> lock(mu_);
    if (result != DriveResult::kReady || !tasks_.empty()) {
      HandBackResultsLocked();
    }
  }
  driver_active_.store(false);
  in_drive = false;
  return result;
}

absl::Status Core::Join() {
  std::lock_guard<std::mutex> join_lock(join_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_) {
      return absl::FailedPreconditionError(
          "Join() needs Close() or Terminate() first");
    }
  }
  if (handler_.joinable()) {
    if (handler_.get_id() == std::this_thread::get_id()) {
      return absl::FailedPreconditionError(
          "Join() called from a result callback");
    }
    handler_.join();
  }
  joined_ = true;
  return absl::OkStatus();
}

std::vector<int64_t> Core::WorkerPids() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> pids;
  for (const Worker& w : workers_) pids.push_back(transport_->WorkerPid(w.id));
  return pids;
}

int64_t Core::workers_started() const {
  std::lock_guard<std::mutex> lock(mu_);
  return workers_started_;
}

Core::Worker* Core::FindWorker(WorkerId id) {
  for (Worker& w : workers_) {
    if (w.id == id) return &w;
  }
  return nullptr;
}

int Core::LiveWorkers() const {
  int n = 0;
  for (const Worker& w : workers_) n += w.stopping ? 0 : 1;
  return n;
}

bool Core::StartOneWorker() {
  absl::StatusOr<WorkerId> id = transport_->StartWorker(table_->size());
  if (!id.ok()) {
    if (broken_.ok() && LiveWorkers() == 0) {
      broken_ = absl::Status(id.status().code(),
                             absl::StrCat("pool broken: cannot start a worker: ",
                                          id.status().message()));
    }
    return false;
  }
  Worker w;
  w.id = *id;
  // A worker that resolves functions by name can run any the table holds.
  w.generation = transport_->WorkersResolveFunctions() ? UINT32_MAX
                                                       : table_->size();
  workers_.push_back(std::move(w));
  ++workers_started_;
  return true;
}

void Core::Requeue(uint64_t id, bool front) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  it->second.worker = 0;
  ++pending_functions_[it->second.function];
  if (front) {
    pending_.push_front(id);
  } else {
    pending_.push_back(id);
  }
}

void Core::FailAll(const absl::Status& status, std::vector<Completion>* out) {
  for (auto& [id, task] : tasks_) {
    if (task.done) out->emplace_back(std::move(task.done), status);
  }
  tasks_.clear();
  pending_.clear();
  pending_functions_.clear();
  for (Worker& w : workers_) w.outstanding.clear();
}

void Core::Break(absl::Status status, std::vector<Completion>* out) {
  if (broken_.ok()) broken_ = status;
  FailAll(broken_, out);
  for (Worker& w : workers_) {
    if (!w.stopping) {
      w.stopping = true;
      transport_->StopWorker(w.id);
    }
  }
}

void Core::HandleEvent(TransportEvent& ev, std::vector<Completion>* out) {
  Worker* w = FindWorker(ev.worker);
  switch (ev.kind) {
    case TransportEvent::Kind::kResult: {
      if (w != nullptr) {
        auto pos = std::find(w->outstanding.begin(), w->outstanding.end(),
                             ev.task_id);
        if (pos != w->outstanding.end()) w->outstanding.erase(pos);
      }
      auto it = tasks_.find(ev.task_id);
      if (it == tasks_.end()) return;  // terminated or broken meanwhile
      Task& t = it->second;
      if (ev.ok && ev.bare_string) {
        if (t.done_bare) {
          out->emplace_back(nullptr, std::move(ev.payload),
                            std::move(t.done_bare));
        } else {
          std::vector<std::string> one;
          one.push_back(std::move(ev.payload));
          out->emplace_back(std::move(t.done), Encode(one));
        }
      } else if (ev.ok) {
        out->emplace_back(std::move(t.done), std::move(ev.payload));
      } else {
        out->emplace_back(std::move(t.done),
                          DecodeFailureStatus(ev.payload, t.base_index));
      }
      tasks_.erase(it);
      return;
    }
    case TransportEvent::Kind::kInitFailed: {
      Break(absl::AbortedError(absl::StrCat(
                "pool broken: worker initializer failed in ",
                transport_->WorkerName(ev.worker), ": ", ev.status.message())),
            out);
      return;
    }
    case TransportEvent::Kind::kWorkerExited: {
      if (w == nullptr) return;
      std::deque<uint64_t> held = std::move(w->outstanding);
      workers_.erase(workers_.begin() + (w - workers_.data()));
      if (held.empty()) return;
      std::string why = ev.status.ok()
                            ? absl::StrCat("worker lost: ",
                                           transport_->WorkerName(ev.worker),
                                           " exited with code 0")
                            : std::string(ev.status.message());
      uint64_t blamed = ev.running_known ? 0 : held.front();
      if (ev.running_task != 0 &&
          std::find(held.begin(), held.end(), ev.running_task) != held.end()) {
        blamed = ev.running_task;
      }
      // Tasks it had not started go back to the front, in order.
      for (auto rit = held.rbegin(); rit != held.rend(); ++rit) {
        if (*rit != blamed) Requeue(*rit, /*front=*/true);
      }
      if (blamed == 0) return;  // it died between tasks
      auto it = tasks_.find(blamed);
      if (it == tasks_.end()) return;
      Task& t = it->second;
      if (++t.attempts <= options_.retries) {
        Requeue(blamed, /*front=*/true);
        return;
      }
      absl::Status s = absl::UnavailableError(
          absl::StrCat("task ", t.base_index, " lost: ", why));
      s.SetPayload("mp.index", absl::Cord(absl::StrCat(t.base_index)));
      s.SetPayload("mp.pid",
                   absl::Cord(absl::StrCat(transport_->WorkerPid(ev.worker))));
      out->emplace_back(std::move(t.done), std::move(s));
      tasks_.erase(it);
      return;
    }
  }
}

bool Core::Maintain(std::vector<Completion>* out, bool may_start_workers) {
  if (terminating_) return false;
  if (!broken_.ok()) {
    if (!tasks_.empty()) FailAll(broken_, out);
    return false;
  }
  const bool done = closed_ && tasks_.empty();
  if (done) {
    for (Worker& w : workers_) {
      if (!w.stopping) {
        w.stopping = true;
        transport_->StopWorker(w.id);
      }
    }
    return false;
  }
  // Retire workers that reached max_tasks_per_child, and idle workers whose
  // table is too old for every pending task.
  const uint32_t newest = table_->size();
  for (Worker& w : workers_) {
    if (w.stopping || !w.outstanding.empty()) continue;
    bool retire = options_.max_tasks_per_child > 0 &&
                  w.assigned >= options_.max_tasks_per_child;
    // A fresh worker runs everything, so replacing an idle stale one is
    // always safe (and avoids head-of-line blocking on a new function).
    if (!retire && w.generation < newest && !pending_functions_.empty() &&
        pending_functions_.rbegin()->first >= w.generation) {
      retire = true;
    }
    if (retire) {
      w.stopping = true;
      transport_->StopWorker(w.id);
    }
  }
  bool need_start = false;
  while (LiveWorkers() < options_.processes) {
    if (!may_start_workers) {
      need_start = true;
      break;
    }
    if (!StartOneWorker()) break;
  }
  if (!broken_.ok()) {
    FailAll(broken_, out);
    return false;
  }
  Dispatch();
  return need_start;
}

bool Core::Dispatch() {
  if (terminating_ || !broken_.ok()) return false;
  int live = 0;
  for (const Worker& w : workers_) live += w.stopping ? 0 : 1;
  if (live == 0) return false;
  bool to_idle = false;
  // Spread what is pending over the workers, at most the per-worker cap.
  size_t held = 0;
  for (const Worker& w : workers_) held += w.outstanding.size();
  int share = static_cast<int>((pending_.size() + held + live - 1) / live);
  share = std::max(1, std::min(share, options_.max_inflight_per_worker));
  while (!pending_.empty()) {
    uint64_t id = pending_.front();
    auto it = tasks_.find(id);
    if (it == tasks_.end() || it->second.worker != 0) {
      pending_.pop_front();  // cancelled
      continue;
    }
    Task& t = it->second;
    Worker* best = nullptr;
    for (Worker& w : workers_) {
      if (w.stopping || w.generation <= t.function) continue;
      if (options_.max_tasks_per_child > 0 &&
          w.assigned >= options_.max_tasks_per_child) {
        continue;
      }
      if (static_cast<int>(w.outstanding.size()) >= share) continue;
      if (best == nullptr || w.outstanding.size() < best->outstanding.size()) {
        best = &w;
      }
    }
    if (best == nullptr) return to_idle;
    pending_.pop_front();
    RemovePending(id);
    absl::Status s = transport_->Send(best->id, id, t.function, t.payload);
    if (!s.ok()) {
      // The worker is going away; its exit event will come. Keep the task.
      Requeue(id, /*front=*/true);
      best->stopping = true;
      return to_idle;
    }
    t.worker = best->id;
    to_idle |= best->outstanding.empty();
    best->outstanding.push_back(id);
    ++best->assigned;
  }
  return to_idle;
}

void Core::HandlerLoop() {
  bool handback_tick = false;
  std::vector<TransportEvent> events;
  std::vector<Completion> completions;
  for (;;) {
    events.clear();
    completions.clear();
    absl::Status polled = transport_->Poll(
        handback_tick ? kHandBackTick : absl::InfiniteDuration(), &events);
    bool exit = false;
    bool need_start = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Take the results back when no driver came since the last wake-up:
      // drivers stopped coming, or one waits long (results may as well wake
      // this thread then), or runs a callback that blocks.
      if (results_to_driver_ && drives_ == drives_at_tick_) {
        HandBackResultsLocked();
      }
      drives_at_tick_ = drives_;
      for (TransportEvent& ev : events) HandleEvent(ev, &completions);
      if (!polled.ok() && broken_.ok()) {
        Break(absl::InternalError(absl::StrCat("pool broken: ", polled.message())),
              &completions);
        for (Worker& w : workers_) transport_->KillWorker(w.id);
        terminating_ = true;
        closed_ = true;
      }
      need_start = Maintain(&completions, /*may_start_workers=*/false);
      transport_->Flush();
      exit = ExitingLocked();
      handback_tick = results_to_driver_;
    }
    // What the events decided (a lost worker's tasks included) is reported
    // before replacements start: starting a worker can take a while (a
    // spawn worker must start and connect back).
    RunCompletions(&completions);
    if (need_start && !exit) {
      completions.clear();
      {
        std::lock_guard<std::mutex> lock(mu_);
        const int64_t started_before = workers_started_;
        Maintain(&completions);
        transport_->Flush();
        // A driver polls the workers it knew when it began to wait, and
        // this thread does not watch results now: have it poll the new
        // ones too.
        if (workers_started_ != started_before && results_to_driver_) {
          transport_->WakeDriver();
        }
        exit = ExitingLocked();
      }
      RunCompletions(&completions);
    }
    if (exit) break;
  }
}

bool Core::ExitingLocked() const {
  return workers_.empty() && (terminating_ || (closed_ && tasks_.empty()) ||
                              (!broken_.ok() && closed_));
}

}  // namespace pool_internal
}  // namespace mp
