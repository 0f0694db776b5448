// -----------------------------------------------------------------------------
// File: process/internal/child.h
// -----------------------------------------------------------------------------
//
// The code that runs in a spawned child between clone and exec. The parent
// (`mp::Spawn()`) fills a `ChildPlan` with plain pointers into memory it owns;
// `RunChild()` only reads it and makes async-signal-safe system calls: no
// allocation, no locks, no exceptions, no Status. On failure it writes a
// `ChildError` to `plan.error_fd` and calls `_exit(127)`.

#ifndef MP_PROCESS_INTERNAL_CHILD_H_
#define MP_PROCESS_INTERNAL_CHILD_H_

#include <signal.h>
#include <sys/types.h>

#include <cstddef>

namespace mp {
namespace process_internal {

// The steps of the child, for error messages.
enum class ChildStage : int {
  kSignals = 1,
  kSetsid,
  kSetpgid,
  kPdeathsig,
  kMoveFd,
  kCloseOtherFds,
  kDup2,
  kChdir,
  kExecve,
};

// Human-readable name of a stage ("chdir", "execve", ...).
const char* ChildStageName(ChildStage stage);

// What the child writes to the error pipe (one write, atomic).
struct ChildError {
  int stage;  // a ChildStage
  int err;    // errno
};

struct FdMove {
  int child_fd;
  int parent_fd;
};

struct ChildPlan {
  const char* path = nullptr;        // resolved program for execve
  char* const* argv = nullptr;       // NULL-terminated
  char* const* envp = nullptr;       // NULL-terminated
  const char* cwd = nullptr;         // nullptr: inherit
  const FdMove* fds = nullptr;
  size_t num_fds = 0;
  int* scratch_fds = nullptr;        // num_fds ints, written by the child
  bool fds_collide = false;          // some parent_fd is another's child_fd
  int temp_fd_floor = 3;             // > every fd named in the plan
  bool close_other_fds = true;
  int max_fd_fallback = 1024;        // bound for the no-close_range fallback
  bool new_process_group = false;
  bool new_session = false;
  int parent_death_signal = 0;
  pid_t parent_pid = 0;
  int umask = -1;
  const sigset_t* restore_mask = nullptr;
  int error_fd = -1;                 // write end of the close-on-exec pipe
};

// RunChild()
//
// The child's entry point (a `clone()` start routine: `arg` is a
// `const ChildPlan*`). Never returns.
int RunChild(void* arg) noexcept;

// CloseRangeCloexec()
//
// Marks fds in [first, last] close-on-exec: `close_range(CLOSE_RANGE_CLOEXEC)`
// when the kernel has it, otherwise `fcntl(F_SETFD)` on each fd up to
// `max_fd_fallback`. Async-signal-safe. Returns 0 or an errno.
int CloseRangeCloexec(unsigned first, unsigned last,
                      int max_fd_fallback) noexcept;

}  // namespace process_internal
}  // namespace mp

#endif  // MP_PROCESS_INTERNAL_CHILD_H_
