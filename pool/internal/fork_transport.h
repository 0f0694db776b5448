// -----------------------------------------------------------------------------
// File: pool/internal/fork_transport.h
// -----------------------------------------------------------------------------
//
// The process transport: each worker is a child forked from the pool's
// handler thread, talking to the pool over a socketpair. Frames are
//
//   len:u32  word:u32  task_id:u64  payload[len]
//
// where `word` is the function index (pool -> worker) or the result kind
// (worker -> pool: 0 ok, 1 task failure, 2 initializer failure, 3 a bare
// string result, 4 a bare string result in the worker's `ResultRing`, the
// payload being its 24-byte `RingRecord`, 5 the ring's memfd, passed with
// the frame as SCM_RIGHTS). Other payloads are codec bytes (`runner.h`). A
// worker runs every task it reads, in order, and writes its results back in
// batches (at least every millisecond); a large string result goes through
// its ring when there is room, and is sent at once. A worker makes its ring
// with its first large result, so a pool whose results are small maps none.
//
// A worker's death is seen by the pool's poll loop through its pidfd
// (`pidfd_open`; socket EOF where the kernel lacks it), with no timers. Each
// worker also has a shared page where it writes the id of the task it is
// running, so the pool knows which task a dead worker was running and which
// it had not started.
//
// Workers ignore SIGINT (Ctrl-C reaches the pool's owner, whose exit ends
// them: they have PR_SET_PDEATHSIG = SIGKILL and see EOF on their socket),
// flush stdio and `_exit()`.

#ifndef MP_POOL_INTERNAL_FORK_TRANSPORT_H_
#define MP_POOL_INTERNAL_FORK_TRANSPORT_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pool/internal/fresh_memory.h"
#include "pool/internal/result_ring.h"
#include "pool/internal/runner.h"
#include "pool/internal/transport.h"
#include "process/fd.h"

namespace mp {
namespace pool_internal {

// The functions a worker can run, by the index a task frame names.
class WorkerFunctions {
 public:
  virtual ~WorkerFunctions() = default;
  // The runner of function `fn`, or nullptr.
  virtual ChunkRunner* Get(uint32_t fn) = 0;
  // A frame named function `fn` (workers that were not forked from the
  // pool learn each function's registered name with its first task): look
  // `name` up and remember it. False with `*error` set when there is none.
  virtual bool Define(uint32_t fn, absl::string_view name,
                      std::string* error) {
    (void)fn;
    (void)name;
    *error = "this worker cannot look functions up by name";
    return false;
  }
};

// RunWorkerLoop()
//
// A worker's side of the transport, whatever started it: reads task frames
// from `sock` until EOF, runs each with its runner from `functions`, and
// writes the results back in batches. `*slot` holds the id of the task
// running (0 between tasks). With its first large string result, the worker
// creates a `ResultRing` of `ring_capacity` bytes (0: none) and sends the
// pool its fd; such results then go through the ring when it has room. A
// result larger than `max_payload` fails its task with kResourceExhausted.
// Returns at EOF or when the pool is gone.
void RunWorkerLoop(int sock, std::atomic<uint64_t>* slot, size_t max_payload,
                   size_t ring_capacity, WorkerFunctions* functions);

// ReportInitFailure()
//
// Writes the frame that tells the pool this worker's initializer failed.
void ReportInitFailure(int sock, const absl::Status& status);

// A worker process that a `WorkerLauncher` started and connected.
struct LaunchedWorker {
  pid_t pid = -1;
  UniqueFd sock;     // connected to the worker, close-on-exec
  UniqueFd exit_fd;  // becomes readable when the worker ended
  // A shared page of sizeof(std::atomic<uint64_t>) bytes, mapped here and
  // in the worker; the transport munmaps it.
  std::atomic<uint64_t>* slot = nullptr;
  // Waits for the (ended or killed) worker; returns its exit code as
  // `mp::Process::exitcode()` does (-N: killed by signal N).
  std::function<int()> reap;
};

// Starts workers other than by forking the pool's process (the spawn and
// forkserver start methods; `pool/internal/remote_worker.h`).
class WorkerLauncher {
 public:
  virtual ~WorkerLauncher() = default;
  virtual absl::StatusOr<LaunchedWorker> Launch() = 0;
};

struct ForkTransportOptions {
  // Runs in each worker before its first task; a non-OK status or an
  // exception breaks the pool. (Forked workers only: a launcher runs its
  // own.)
  std::function<absl::Status()> initializer;
  // Largest payload of one frame (the length field is 32 bits). A larger
  // result fails its task with kResourceExhausted; tests lower it.
  size_t max_payload = 0xFFFFFFFFu;
  // Bytes of each forked worker's result ring (`result_ring.h`); 0: none,
  // large results then come over the socket. Tests make it small.
  size_t ring_capacity = ResultRing::kDefaultCapacity;
  // When set, workers are started by it instead of fork(); each task frame
  // names its function (`ChunkRunner::remote_name()`) the first time a
  // worker sees it, and the worker resolves it by name.
  std::shared_ptr<WorkerLauncher> launcher;
};

// A growable byte buffer that, unlike std::string::resize, does not zero
// what it reserves (a 256 KiB memset per read cost more than the read).
class ReadBuffer {
 public:
  const char* data() const { return buf_.get(); }
  size_t size() const { return len_; }
  // Room for `n` more bytes; returns where to write them.
  char* Reserve(size_t n);
  void Commit(size_t n) { len_ += n; }
  // Drops the first `n` bytes.
  void Consume(size_t n);

 private:
  std::unique_ptr<char[]> buf_;
  size_t len_ = 0;
  size_t cap_ = 0;
};

class ForkTransport : public Transport {
 public:
  // `table` must outlive the transport; read by workers after fork.
  static absl::StatusOr<std::unique_ptr<ForkTransport>> Create(
      const FunctionTable* table, ForkTransportOptions options);
  ~ForkTransport() override;  // kills and reaps workers still alive

  absl::StatusOr<WorkerId> StartWorker(uint32_t generation) override;
  absl::Status Send(WorkerId worker, uint64_t task_id, uint32_t function,
                    absl::string_view payload) override;
  void Flush() override;
  void StopWorker(WorkerId worker) override;
  void KillWorker(WorkerId worker) override;
  absl::Status Poll(absl::Duration timeout,
                    std::vector<TransportEvent>* events) override;
  void Wake() override;
  absl::Status PollForDriver(absl::Duration timeout,
                             std::vector<TransportEvent>* events) override;
  void WakeDriver() override;
  void LeaveResultsToDriver(bool on) override { results_to_driver_ = on; }
  std::string WorkerName(WorkerId worker) override;
  int64_t WorkerPid(WorkerId worker) override;
  size_t MaxPayload() const override { return options_.max_payload; }
  bool WorkersResolveFunctions() const override {
    return options_.launcher != nullptr;
  }
  // How many results came through the workers' rings (the rest came over
  // their sockets); for tests and diagnostics.
  uint64_t results_through_ring() const { return ring_results_.load(); }

 private:
  struct Proc {
    WorkerId id = 0;
    pid_t pid = -1;
    UniqueFd sock;
    UniqueFd pidfd;
    std::atomic<uint64_t>* slot = nullptr;  // shared memory: running task id
    // `slot` is from WorkerSlots::Take() (fork workers); otherwise it is a
    // mapping of its own (launched workers).
    bool slot_is_taken = false;
    ResultRing ring;  // the worker's large results, once it sent the fd
    std::string out;
    size_t out_off = 0;
    ReadBuffer in;           // bytes not yet parsed
    std::string big;         // body of a large frame being read
    size_t big_have = 0;
    uint32_t big_word = 0;
    uint64_t big_task = 0;
    bool reading_big = false;
    bool eof = false;
    bool stop_requested = false;
    bool shut = false;
    std::function<int()> reap;  // launched workers: see LaunchedWorker
    std::vector<bool> named;    // launched workers: functions named to it

    Proc() = default;
    Proc(const Proc&) = delete;
    Proc& operator=(const Proc&) = delete;
    ~Proc();
    // Waits for the ended (or killed) worker: its exit code as `WaitPid()`
    // gives it (-N: signal N).
    absl::StatusOr<int> Reap();
  };

  ForkTransport(const FunctionTable* table, ForkTransportOptions options,
                UniqueFd wake, UniqueFd driver_wake);
  absl::StatusOr<WorkerId> StartLaunched();
  // Registers a started worker's fds and makes it known to Poll().
  WorkerId Add(std::unique_ptr<Proc> p);
  absl::Status PollWith(int wake_fd, absl::Duration timeout,
                        std::vector<TransportEvent>* events);
  bool FlushLocked(Proc& p);  // false: write error (worker gone)
  void ReadLocked(Proc& p, std::vector<TransportEvent>* events, bool drain);
  void ParseLocked(Proc& p, std::vector<TransportEvent>* events);
  void ReapLocked(Proc& p, std::vector<TransportEvent>* events);
  [[noreturn]] void WorkerMain(int sock, pid_t parent,
                               const std::vector<int>& close_fds,
                               std::atomic<uint64_t>* slot);

  const FunctionTable* table_;
  ForkTransportOptions options_;
  UniqueFd wake_;
  UniqueFd driver_wake_;
  std::mutex mu_;
  SpareBuffer spare_;  // for the next large result (fresh_memory.h)
  WorkerId next_id_ = 1;
  std::map<WorkerId, std::unique_ptr<Proc>> procs_;
  // The handler's Poll() skips the sockets of workers whose exit it sees on
  // their pidfd (Transport::LeaveResultsToDriver).
  std::atomic<bool> results_to_driver_{false};
  std::atomic<uint64_t> ring_results_{0};
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_FORK_TRANSPORT_H_
