// -----------------------------------------------------------------------------
// File: process/spawn.h
// -----------------------------------------------------------------------------
//
// `mp::Spawn()` starts a program in a new process (fork + exec, done safely):
// Python's `subprocess.Popen` without the pipes and the object, or
// `posix_spawn` with a friendlier fd plan and real error reporting.
//
//   mp::SpawnOptions opts;
//   opts.argv = {"grep", "-c", "x"};          // "grep" is looked up in PATH
//   opts.fds = {{0, in.get()}, {1, out.get()}};  // child fd <- parent fd
//   opts.new_process_group = true;
//   absl::StatusOr<pid_t> pid = mp::Spawn(opts);
//   if (!pid.ok()) return pid.status();       // e.g. kNotFound: no such program
//   absl::StatusOr<int> code = mp::WaitPid(*pid);  // 0, 1, ... or -SIGNAL
//
// `Spawn()` returns only after the child called `execve()` successfully; when
// anything before that fails (chdir, dup2, execve) the child reports its errno
// to the parent over a close-on-exec pipe, exits 127, is reaped, and `Spawn()`
// returns that errno as a status. The parent prepares everything (argv, envp,
// the resolved path, the fd plan); between fork and exec the child makes only
// async-signal-safe system calls, so `Spawn()` is safe in threaded programs.
//
// The child is created with `clone(CLONE_VM | CLONE_VFORK)` on a separate
// stack, like glibc's `posix_spawn`: no page tables are copied, so the cost
// does not grow with the parent's memory. All signals are blocked around the
// clone; the child resets every signal handler to `SIG_DFL` (ignored signals
// too, so jobs see a default SIGPIPE) and then restores the caller's mask.

#ifndef MP_PROCESS_SPAWN_H_
#define MP_PROCESS_SPAWN_H_

#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mp {

struct SpawnOptions {
  // The program and its arguments. `argv[0]` is looked up in PATH (the PATH
  // of `env` when given, else this process's) by the parent when it contains
  // no '/'; otherwise it is executed as is. Must not be empty.
  std::vector<std::string> argv;

  // When set, the program to execute instead of looking up `argv[0]`, which
  // is then passed unchanged (Python's `Popen(executable=...)`). A path, not
  // looked up in PATH.
  std::string executable;

  // The child's environment as "KEY=VALUE" entries; nullopt inherits
  // `environ` as it is at the time of the call.
  std::optional<std::vector<std::string>> env;

  // The child's working directory; empty inherits the caller's. A relative
  // `argv[0]` containing '/' is resolved after the chdir, as by execve.
  std::string cwd;

  // The fd plan: {child_fd, parent_fd} makes `child_fd` in the child a
  // duplicate of `parent_fd` (without close-on-exec). Collisions are handled:
  // {{1, 2}, {2, 1}} swaps stdout and stderr. Child fds 0, 1 and 2 that are
  // not in the plan are inherited; every other fd is closed at exec (see
  // `close_other_fds`).
  std::vector<std::pair<int, int>> fds;

  // Marks every fd >= 3 that is not in the plan close-on-exec in the child
  // (close_range), so fds a library opened without O_CLOEXEC do not leak.
  bool close_other_fds = true;

  // setpgid(0, 0) in the child: the child leads a new process group whose id
  // is its pid, so `kill(-pid, sig)` reaches it and its descendants.
  bool new_process_group = false;

  // setsid() in the child (implies a new process group, no controlling tty).
  bool new_session = false;

  // prctl(PR_SET_PDEATHSIG): the signal the child gets when the parent
  // *thread* that called Spawn() exits (0 = none). If the parent already died
  // before the prctl took effect, the child raises the signal itself.
  int parent_death_signal = 0;

  // umask(2) for the child; -1 inherits.
  int umask = -1;

  // The child's signal mask; nullopt gives it the caller's mask. A program
  // that blocks signals for a signalfd sets this to an empty set so the
  // children it starts can be interrupted.
  std::optional<sigset_t> signal_mask;
};

// Spawn()
//
// Starts `options.argv` in a new process as described above and returns its
// pid once it has exec'd. The caller must reap it (`WaitPid()`).
//
// Errors: `kInvalidArgument` for an empty argv, a string with a NUL byte, a
// negative or repeated child fd, or a parent fd that is not open;
// `kNotFound` when argv[0] is not in PATH or execve reports ENOENT;
// `kPermissionDenied` for EACCES; otherwise the errno of the failing step
// (the message names it: "chdir /x: ..."). On error no child is left behind.
absl::StatusOr<pid_t> Spawn(const SpawnOptions& options);

// FindExecutable()
//
// Looks `name` up in this process's PATH (default "/bin:/usr/bin" when
// unset), like `execvp` and Python's `shutil.which`: the first regular file
// the caller may execute. A name containing '/' is checked as is.
//
// Errors: `kInvalidArgument` for an empty name; `kPermissionDenied` when only
// non-executable matches exist; `kNotFound` otherwise.
absl::StatusOr<std::string> FindExecutable(absl::string_view name);

// FindExecutableInPath()
//
// `FindExecutable()` against an explicit `path` (a ':'-separated list; an
// empty entry means the current directory, as for execvp).
absl::StatusOr<std::string> FindExecutableInPath(absl::string_view name,
                                                 absl::string_view path);

// DecodeWaitStatus()
//
// Turns a `waitpid()` status into Python's `Popen.returncode` convention:
// the exit status for a normal exit, `-N` for death by signal N.
int DecodeWaitStatus(int wait_status);

// WaitPid()
//
// Blocks until child `pid` exits, reaps it, and returns its decoded exit code
// (see `DecodeWaitStatus()`). Retries EINTR.
//
// Errors: `kNotFound` (ECHILD) when `pid` is not an unreaped child.
absl::StatusOr<int> WaitPid(pid_t pid);

// TryWaitPid()
//
// Like `WaitPid()` but does not block: nullopt while `pid` is still running.
absl::StatusOr<std::optional<int>> TryWaitPid(pid_t pid);

}  // namespace mp

#endif  // MP_PROCESS_SPAWN_H_
