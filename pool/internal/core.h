// -----------------------------------------------------------------------------
// File: pool/internal/core.h
// -----------------------------------------------------------------------------
//
// `pool_internal::Core` is the pool's logic, independent of how tasks travel
// (see `transport.h`): it owns the pending queue and the tasks each worker
// holds, hands tasks to workers (a bounded number in flight per worker),
// keeps `processes` workers alive, retires them at `max_tasks_per_child`,
// fails or retries the task a lost worker was running and re-queues the
// tasks it had not started, and breaks the pool when an initializer fails.
// `Pool` and `ProcessPoolExecutor` are typed layers over one `Core`.
//
// A task is (function index, payload, base index) and a `Done` callback that
// is called exactly once: with the result bytes, or with the status (task
// failure, worker lost, cancelled, terminated, pool broken). `Done` runs
// without the core's lock, on the handler thread, on a thread in `Drive()`,
// or on the thread that called `Cancel()`/`Terminate()`.

#ifndef MP_POOL_INTERNAL_CORE_H_
#define MP_POOL_INTERNAL_CORE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pool/internal/runner.h"
#include "pool/internal/transport.h"

namespace mp {
namespace pool_internal {

struct CoreOptions {
  int processes = 1;
  // A worker exits and is replaced after this many tasks (chunks); 0: never.
  int max_tasks_per_child = 0;
  // How many times a task whose worker died while running it is run again
  // (0: it fails with "worker lost").
  int retries = 0;
  // Most tasks sent ahead to one worker.
  int max_inflight_per_worker = 32;
};

class Core {
 public:
  using Done = std::function<void(absl::StatusOr<std::string>)>;
  // Receives a chunk's one large `std::string` result as the buffer it was
  // read into (`TransportEvent::bare_string`).
  using DoneBare = std::function<void(std::string)>;

  struct TaskSpec {
    uint32_t function = 0;
    std::string payload;
    int64_t base_index = 0;  // index of the chunk's first item, for errors
    Done done;
    // Optional: called instead of `done` for a bare string result. Without
    // it, `done` gets such a result encoded (a copy).
    DoneBare done_bare;
  };

  // The transport is created by the caller with a pointer to `table()`.
  Core(CoreOptions options, std::unique_ptr<FunctionTable> table,
       std::unique_ptr<Transport> transport);
  ~Core();  // Terminate() and Join()

  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  // Core::Start()
  //
  // Starts the workers, then the handler thread. Called from the process's
  // main thread, it starts them itself, before the handler thread exists
  // (cheaper forks); from any other thread, the handler thread starts them
  // (workers die with the thread that forked them, `PR_SET_PDEATHSIG`, and
  // the calling thread may exit before the pool does) and this waits for
  // it. Returns the error that kept the first worker from starting (the
  // core is then broken).
  absl::Status Start();

  // Core::AddFunction()
  //
  // Adds a runner to the table (see `FunctionTable::Add`). Workers started
  // before it cannot run it; the core replaces idle ones as tasks need.
  uint32_t AddFunction(std::shared_ptr<ChunkRunner> runner,
                       std::pair<const void*, uintptr_t> key);
  // Same, making the runner only when the key is new.
  uint32_t AddFunction(
      const std::function<std::shared_ptr<ChunkRunner>()>& make,
      std::pair<const void*, uintptr_t> key);

  // Core::Submit()
  //
  // Queues tasks in order; returns their ids. Errors: kFailedPrecondition
  // after Close()/Terminate(), the pool's broken status; then no `done` is
  // called.
  absl::StatusOr<std::vector<uint64_t>> Submit(std::vector<TaskSpec> tasks);

  // Core::Cancel()
  //
  // Cancels a task that no worker has yet: its `done` gets kCancelled (on
  // this thread) and true is returned. False if it was sent or is finished.
  bool Cancel(uint64_t task_id);

  // Core::CancelPending()
  //
  // `Cancel()` of every task no worker has yet; returns how many.
  int CancelPending();

  // Core::IsSent()
  //
  // True while the task is held by a worker (Python's `Future.running()`).
  bool IsSent(uint64_t task_id) const;

  // Core::Drive()
  //
  // For a thread about to block until `ready()`: polls the workers itself
  // (next to the handler thread) and handles what arrives, so that its
  // result wakes it directly, saving a thread hop on a round trip. One
  // driver at a time: kBusy when another thread drives (then wait as
  // usual). Never starts workers (the handler does that).
  //
  // Latency: the driver first polls without sleeping for a short while
  // (50 us, `sched_yield()` between polls; not on a 1-CPU machine), and
  // while drivers keep coming the handler thread leaves the workers'
  // results to them (it still watches for dead workers), so a result wakes
  // one thread, not two. The handler takes the results back when a driver
  // leaves with tasks still out, when a task is submitted while others are
  // out and nobody drives, when a thread waits without driving, and at the
  // latest two ticks of `kHandBackTick` (1 ms) after the last drive began.
  enum class DriveResult { kReady, kTimeout, kBusy };
  DriveResult Drive(const std::function<bool()>& ready, absl::Duration timeout);

  // Core::Close() / Terminate() / Join()
  //
  // Close: no new tasks; workers exit when all are done. Terminate: fails
  // every unfinished task with kCancelled and kills the workers. Join: waits
  // for the workers to be gone; kFailedPrecondition before Close/Terminate or
  // when called from a `Done` callback.
  void Close();
  void Terminate();
  absl::Status Join();

  // Diagnostics and tests: pids of live workers (0 for threads), and how
  // many workers were started in all.
  std::vector<int64_t> WorkerPids() const;
  int64_t workers_started() const;

 private:
  struct Task {
    uint64_t id = 0;
    uint32_t function = 0;
    std::string payload;
    int64_t base_index = 0;
    Done done;
    DoneBare done_bare;
    int attempts = 0;
    WorkerId worker = 0;  // 0: pending
  };
  struct Worker {
    WorkerId id = 0;
    uint32_t generation = 0;
    std::deque<uint64_t> outstanding;
    int assigned = 0;
    bool stopping = false;
  };
  struct Completion {
    Completion(Done d, absl::StatusOr<std::string> r, DoneBare b = nullptr)
        : done(std::move(d)), result(std::move(r)), bare(std::move(b)) {}
    Done done;
    absl::StatusOr<std::string> result;
    DoneBare bare;  // when set, gets the (bare string) result instead
  };

  void HandlerLoop();
  // Start(): the first `processes` workers (breaks the core if none starts).
  void StartFirstWorkersLocked();
  // The handler polls the workers' results again (see Drive()).
  void HandBackResultsLocked();
  void HandleEvent(TransportEvent& ev, std::vector<Completion>* out);
  // Returns true when workers must be started (only the handler does).
  bool Maintain(std::vector<Completion>* out, bool may_start_workers = true);
  // Runs `Done` callbacks (no lock held), then wakes a polling driver.
  void RunCompletions(std::vector<Completion>* completions,
                      bool wake_driver = true);
  // Returns true when a task went to a worker that held none.
  bool Dispatch();
  void Break(absl::Status status, std::vector<Completion>* out);
  void FailAll(const absl::Status& status, std::vector<Completion>* out);
  void Requeue(uint64_t id, bool front);
  void RemovePending(uint64_t id);
  bool StartOneWorker();
  // The handler thread's end: no worker left, and nothing will start one.
  bool ExitingLocked() const;
  int LiveWorkers() const;
  Worker* FindWorker(WorkerId id);

  const CoreOptions options_;
  std::unique_ptr<FunctionTable> table_;
  std::unique_ptr<Transport> transport_;

  mutable std::mutex mu_;
  absl::Status start_status_;
  bool closed_ = false;
  bool terminating_ = false;
  absl::Status broken_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Task> tasks_;
  std::deque<uint64_t> pending_;
  std::map<uint32_t, int> pending_functions_;  // function -> pending count
  std::vector<Worker> workers_;
  int64_t workers_started_ = 0;

  std::mutex drive_mu_;  // held by the one driver
  std::atomic<bool> driver_active_{false};
  // Guarded by mu_: the handler leaves results to drivers (see Drive()).
  bool results_to_driver_ = false;
  uint64_t drives_ = 0;            // Drive() calls that polled
  uint64_t drives_at_tick_ = 0;    // drives_ at the handler's last wake-up

  std::mutex join_mu_;
  std::thread handler_;
  bool joined_ = false;
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_CORE_H_
