// -----------------------------------------------------------------------------
// File: pool/internal/remote_worker.h
// -----------------------------------------------------------------------------
//
// Pool workers started with the "spawn" or "forkserver" start method, never
// by forking the pool's (possibly multi-threaded) process. A worker is an
// `mp::Process` running a registered entry point (`PoolWorkerMain`, in this
// library), started with the chosen start method. It connects back to the
// pool over a Unix socket with a random abstract name and proves who it is
// with a random token (both sent to it with its arguments, through the
// start method's private pipe), receives the shared "running task" page as
// a memfd (SCM_RIGHTS), runs the pool's initializer if any (a registered
// function), then runs the same loop as a forked worker
// (`RunWorkerLoop`), looking each task's function up by name.
//
// The pool's transport sees a `LaunchedWorker`: the connected socket, the
// worker's `Process` sentinel (its death, for the poll loop), the page, and
// a reaper that joins the `Process` and returns its exit code.

#ifndef MP_POOL_INTERNAL_REMOTE_WORKER_H_
#define MP_POOL_INTERNAL_REMOTE_WORKER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pool/internal/fork_transport.h"
#include "pool/internal/remote_call.h"
#include "process/fd.h"
#include "process/process.h"

namespace mp {
namespace pool_internal {

class RemoteLauncher : public WorkerLauncher {
 public:
  // RemoteLauncher::Create()
  //
  // Listens on a fresh abstract Unix socket. `method` is kSpawn or
  // kForkServer; `init` the registered initializer (or not `set`);
  // `max_payload` as in `ForkTransportOptions`. Errors: kInvalidArgument for
  // kFork, the OS error of socket/bind/listen/getrandom.
  static absl::StatusOr<std::shared_ptr<RemoteLauncher>> Create(
      StartMethod method, RemoteInitializer init, size_t max_payload);

  // RemoteLauncher::Launch()
  //
  // Starts one worker and waits until it connected (at most
  // 60 s). Errors: what `Process::Start()` reports;
  // kUnavailable when the worker ended before connecting (its exit code in
  // the message); kDeadlineExceeded when it did not connect in time (it is
  // killed).
  absl::StatusOr<LaunchedWorker> Launch() override;

  // The abstract socket name workers connect to (tests).
  const std::string& address() const { return address_; }

 private:
  RemoteLauncher(StartMethod method, RemoteInitializer init,
                 size_t max_payload, UniqueFd listener, std::string address,
                 std::string token)
      : method_(method),
        init_(std::move(init)),
        max_payload_(max_payload),
        listener_(std::move(listener)),
        address_(std::move(address)),
        token_(std::move(token)) {}

  const StartMethod method_;
  const RemoteInitializer init_;
  const size_t max_payload_;
  UniqueFd listener_;
  const std::string address_;  // abstract name, without the leading NUL
  const std::string token_;    // 32 hex digits
  uint64_t seq_ = 0;
};

// The registered entry point of a spawn/forkserver pool worker (registered
// as "mp::pool_internal::PoolWorkerMain"). Returns the exit code: 0 after
// the pool closed its input, 1 when it could not connect.
int PoolWorkerMain(std::string address, std::string token, uint64_t seq,
                   std::string init_name, std::string init_args,
                   bool init_returns_status, uint64_t max_payload);

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_REMOTE_WORKER_H_
