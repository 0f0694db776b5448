// -----------------------------------------------------------------------------
// File: pool/internal/fake_transport.h
// -----------------------------------------------------------------------------
//
// Test-only in-process `Transport`. Workers are entries in a table, not
// processes. With `auto_run`, `Poll()` runs each sent task through the
// function table on the calling thread; otherwise the test plays the
// workers: it takes what was sent and injects results, exits and
// initializer failures.
//
//   auto fake = std::make_unique<FakeTransport>(table.get(), /*auto_run=*/false);
//   FakeTransport* f = fake.get();
//   Core core(options, std::move(table), std::move(fake));
//   ... core.Submit(...) ...
//   std::vector<FakeTransport::Sent> sent = f->WaitSent(2);
//   f->Complete(sent[0], "bytes");
//   f->Die(sent[1].worker, "killed by signal 9");

#ifndef MP_POOL_INTERNAL_FAKE_TRANSPORT_H_
#define MP_POOL_INTERNAL_FAKE_TRANSPORT_H_

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "pool/internal/runner.h"
#include "pool/internal/transport.h"

namespace mp {
namespace pool_internal {

class FakeTransport : public Transport {
 public:
  struct Sent {
    WorkerId worker;
    uint64_t task_id;
    uint32_t function;
    std::string payload;
  };

  FakeTransport(const FunctionTable* table, bool auto_run)
      : table_(table), auto_run_(auto_run) {}

  // Transport.
  absl::StatusOr<WorkerId> StartWorker(uint32_t generation) override;
  absl::Status Send(WorkerId worker, uint64_t task_id, uint32_t function,
                    absl::string_view payload) override;
  void Flush() override {}
  void StopWorker(WorkerId worker) override;
  void KillWorker(WorkerId worker) override;
  absl::Status Poll(absl::Duration timeout,
                    std::vector<TransportEvent>* events) override;
  void Wake() override;
  absl::Status PollForDriver(absl::Duration timeout,
                             std::vector<TransportEvent>* events) override;
  void WakeDriver() override;
  std::string WorkerName(WorkerId worker) override;
  int64_t WorkerPid(WorkerId worker) override { return 1000 + worker; }
  size_t MaxPayload() const override { return 1 << 20; }

  // Test controls (thread-safe).
  std::vector<Sent> WaitSent(size_t n);  // waits until n more were sent
  void Complete(const Sent& task, std::string payload, bool ok = true);
  void Die(WorkerId worker, std::string reason, uint64_t running_task = 0,
           bool running_known = false);
  void FailInit(WorkerId worker, std::string reason);
  void FailNextStarts(int n);  // the next n StartWorker() calls fail
  // StartWorker() blocks until ReleaseStarts() (a slow start: a spawn
  // worker that takes long to connect).
  void HoldStarts();
  void ReleaseStarts();
  int starts_waiting();
  std::vector<WorkerId> LiveWorkers();
  int started();
  std::vector<WorkerId> stopped();

 private:
  void Push(TransportEvent ev);

  const FunctionTable* table_;
  const bool auto_run_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool driver_woken_ = false;
  absl::Status PollAs(bool* woken, absl::Duration timeout,
                      std::vector<TransportEvent>* events);
  WorkerId next_ = 1;
  std::set<WorkerId> live_;
  std::map<WorkerId, uint32_t> generation_;
  std::vector<WorkerId> stopped_;
  std::deque<Sent> sent_;
  std::deque<Sent> to_run_;
  std::deque<TransportEvent> events_;
  int fail_starts_ = 0;
  bool hold_starts_ = false;
  int starts_waiting_ = 0;
  int started_ = 0;
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_FAKE_TRANSPORT_H_
