// -----------------------------------------------------------------------------
// File: pool/internal/transport.h
// -----------------------------------------------------------------------------
//
// The one seam between the pool's logic (`pool_internal::Core`: scheduling,
// chunking, ordering, failure handling, retries) and the way tasks and
// results travel to and from workers. Today there are two transports: forked
// worker processes over socketpairs (`fork_transport.h`) and an in-process
// fake for unit tests (`fake_transport.h`); an MPI transport (ranks across
// machines) plugs in here too.
//
// A transport moves opaque bytes. The pool sends a task as
// (task id, function index, payload) and gets back events: a task's result
// (bytes the worker produced, or an encoded failure), a worker that exited,
// or a worker whose initializer failed. What the payload means is the
// business of the function table (`runner.h`).
//
// Threading: `Send()`, `StopWorker()`, `KillWorker()` and `Wake()` may be
// called from any thread (the core calls them under its own lock); `Poll()`
// and `StartWorker()` are called by the core's one handler thread.

#ifndef MP_POOL_INTERNAL_TRANSPORT_H_
#define MP_POOL_INTERNAL_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mp {
namespace pool_internal {

using WorkerId = uint64_t;

struct TransportEvent {
  enum class Kind {
    // A task finished. `ok` says whether `payload` is the runner's output or
    // an encoded failure (`runner.h`: `EncodeFailure`). With `bare_string`
    // (and `ok`), `payload` is the bytes of the chunk's one `std::string`
    // result, not encoded (`ChunkRunner::RunBare`).
    kResult,
    // The worker is gone. `status` is OK for a clean exit (after
    // `StopWorker()` or at `max_tasks_per_child`), otherwise it names the pid
    // and the signal or exit code. `running_task` is the task it was running
    // when the transport knows it (0: none or unknown).
    kWorkerExited,
    // The worker's initializer failed (`status` says how); the worker exits.
    kInitFailed,
  };
  Kind kind = Kind::kResult;
  WorkerId worker = 0;
  uint64_t task_id = 0;
  bool ok = true;
  bool bare_string = false;
  std::string payload;
  absl::Status status;
  uint64_t running_task = 0;
  // True when `running_task` is known to be right, so 0 means the worker
  // was between tasks: none of the tasks it held is to blame.
  bool running_known = false;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Transport::StartWorker()
  //
  // Starts one worker that can run the functions the table holds now
  // (`generation` of them). Errors: the OS error that prevented it.
  virtual absl::StatusOr<WorkerId> StartWorker(uint32_t generation) = 0;

  // Transport::Send()
  //
  // Queues one task for `worker`; never blocks (the transport flushes queued
  // bytes in `Poll()`). Tasks reach a worker in the order sent.
  virtual absl::Status Send(WorkerId worker, uint64_t task_id,
                            uint32_t function, absl::string_view payload) = 0;

  // Transport::Flush()
  //
  // Writes what `Send()` queued as far as possible without blocking; the
  // rest is written by `Poll()` (which the transport wakes for it).
  virtual void Flush() = 0;

  // Transport::StopWorker()
  //
  // Asks the worker to exit once it has run what was sent (closes its
  // input). Its `kWorkerExited` event follows.
  virtual void StopWorker(WorkerId worker) = 0;

  // Transport::KillWorker()
  //
  // Ends the worker now (SIGKILL for processes). Its `kWorkerExited` event
  // follows.
  virtual void KillWorker(WorkerId worker) = 0;

  // Transport::Poll()
  //
  // Flushes queued sends and waits until at least one event arrived,
  // `Wake()` was called, or `timeout` passed; appends the events to
  // `*events`. A worker's results always come before its exit event.
  virtual absl::Status Poll(absl::Duration timeout,
                            std::vector<TransportEvent>* events) = 0;

  // Transport::Wake()
  //
  // Makes a concurrent or the next `Poll()` return promptly.
  virtual void Wake() = 0;

  // Transport::PollForDriver() / WakeDriver()
  //
  // The same as `Poll()` / `Wake()` for a second poller: a thread waiting
  // for a result may poll the workers itself (see `Core::Drive`), so the
  // result wakes it directly instead of going through the handler thread.
  // Both pollers may run at once; each event goes to exactly one of them.
  // `Wake()` never wakes the driver and `WakeDriver()` never the handler.
  virtual absl::Status PollForDriver(absl::Duration timeout,
                                     std::vector<TransportEvent>* events) = 0;
  virtual void WakeDriver() = 0;

  // Transport::LeaveResultsToDriver()
  //
  // While on, `Poll()` need not watch for results (the core has a driver
  // polling for them); it must still report workers that exit, and takes
  // effect at its next call. `Wake()` a running `Poll()` after turning it
  // off. A hint: a transport may ignore it.
  virtual void LeaveResultsToDriver(bool on) { (void)on; }

  // Transport::MaxPayload()
  //
  // The largest task payload (and result) one message can carry.
  virtual size_t MaxPayload() const = 0;

  // Transport::WorkerName()
  //
  // How errors name the worker ("pid 1234").
  virtual std::string WorkerName(WorkerId worker) = 0;

  // Transport::WorkerPid()
  //
  // The worker's pid, or 0 when it has none; for tests and diagnostics.
  virtual int64_t WorkerPid(WorkerId worker) = 0;

  // Transport::WorkersResolveFunctions()
  //
  // True when a worker can run functions added to the table after it
  // started (it looks them up by name), so the core need not replace
  // workers when the table grows.
  virtual bool WorkersResolveFunctions() const { return false; }
};

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_TRANSPORT_H_
