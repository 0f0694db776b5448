// -----------------------------------------------------------------------------
// File: process/internal/forkserver.h
// -----------------------------------------------------------------------------
//
// The forkserver start method. The server is this program, fork+exec'ed
// (`mp::Spawn`) with `MP_PROCESS_BOOT=forkserver:<fd>:<count>`, so it is
// single-threaded even when the parent has threads. It serves one parent
// over a stream socket:
//
//   parent -> server  u32 length + SCM_RIGHTS(status pipe write end),
//                     then `length` bytes: an encoded `ChildPayload`
//   server -> parent  on the status pipe: i32 pid of the new child (or
//                     -errno when fork failed), later i32 exit code
//                     (Python's convention, -N for signal N), then EOF
//
// The server forks one child per request, reaps its children (signalfd for
// SIGCHLD) and reports their exit codes. When the parent's end of the
// socket closes, the server exits; daemon children have
// `PR_SET_PDEATHSIG(SIGKILL)` towards the server and die with it.

#ifndef MP_PROCESS_INTERNAL_FORKSERVER_H_
#define MP_PROCESS_INTERNAL_FORKSERVER_H_

#include <sys/types.h>

#include "absl/status/statusor.h"
#include "process/fd.h"
#include "process/internal/runtime.h"

namespace mp {
namespace process_internal {

struct ForkServerChild {
  pid_t pid;
  UniqueFd status;  // read end of the status pipe: the sentinel
};

// Asks the server (started if needed) for a child running `payload`.
// Errors: `kUnavailable` when the server is gone; the errno of fork in the
// server.
absl::StatusOr<ForkServerChild> ForkServerStart(const ChildPayload& payload);

// The server's main loop (in the exec'ed program). Never returns.
[[noreturn]] void RunForkServer(int control_fd) noexcept;

// In a forked child: closes the inherited control socket (the server must
// see EOF when the parent goes) and forgets the server.
void ForkServerAfterFork();

}  // namespace process_internal
}  // namespace mp

#endif  // MP_PROCESS_INTERNAL_FORKSERVER_H_
