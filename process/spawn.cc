#include "process/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "process/fd.h"
#include "process/internal/child.h"

extern char** environ;

namespace mp {
namespace {

using process_internal::ChildError;
using process_internal::ChildPlan;
using process_internal::ChildStage;
using process_internal::FdMove;

constexpr char kDefaultPath[] = "/bin:/usr/bin";

// Stack for the CLONE_VM child. Only the pages it touches get memory.
constexpr size_t kChildStackSize = 256 * 1024;

bool HasNul(const std::string& s) {
  return s.find('\0') != std::string::npos;
}

absl::Status CheckNoNul(const std::vector<std::string>& v, const char* what) {
  for (const std::string& s : v) {
    if (HasNul(s)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Spawn: ", what, " entry contains a NUL byte"));
    }
  }
  return absl::OkStatus();
}

std::vector<char*> PointerArray(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// The PATH a child with environment `env` would search.
std::string ExecPath(const std::optional<std::vector<std::string>>& env) {
  if (env.has_value()) {
    for (const std::string& e : *env) {
      if (e.compare(0, 5, "PATH=") == 0) return e.substr(5);
    }
    return kDefaultPath;
  }
  const char* p = ::getenv("PATH");
  return p != nullptr ? p : kDefaultPath;
}

// Frees the child's stack and restores the signal mask on every path.
class CloneGuard {
 public:
  CloneGuard() = default;
  CloneGuard(const CloneGuard&) = delete;
  CloneGuard& operator=(const CloneGuard&) = delete;
  ~CloneGuard() {
    if (stack_ != nullptr) ::munmap(stack_, kChildStackSize);
  }
  absl::Status Map() {
    void* p = ::mmap(nullptr, kChildStackSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                     -1, 0);
    if (p == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap child stack");
    stack_ = p;
    return absl::OkStatus();
  }
  void* top() const { return static_cast<char*>(stack_) + kChildStackSize; }

 private:
  void* stack_ = nullptr;
};

}  // namespace

absl::StatusOr<std::string> FindExecutableInPath(absl::string_view name,
                                                 absl::string_view path) {
  if (name.empty()) {
    return absl::InvalidArgumentError("FindExecutable: empty program name");
  }
  if (name.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("FindExecutable: name contains NUL");
  }
  auto check = [](const std::string& candidate) -> int {
    struct stat st;
    if (::stat(candidate.c_str(), &st) != 0) return errno;
    if (!S_ISREG(st.st_mode)) return EACCES;
    if (::access(candidate.c_str(), X_OK) != 0) return errno;
    return 0;
  };
  if (name.find('/') != absl::string_view::npos) {
    std::string candidate(name);
    int err = check(candidate);
    if (err == 0) return candidate;
    return absl::ErrnoToStatus(err, candidate);
  }
  bool saw_eacces = false;
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    std::string candidate =
        dir.empty() ? std::string(name) : absl::StrCat(dir, "/", name);
    int err = check(candidate);
    if (err == 0) return candidate;
    if (err == EACCES) saw_eacces = true;
  }
  if (saw_eacces) {
    return absl::PermissionDeniedError(
        absl::StrCat(name, ": found in PATH but not executable"));
  }
  return absl::NotFoundError(absl::StrCat(name, ": not found in PATH"));
}

absl::StatusOr<std::string> FindExecutable(absl::string_view name) {
  const char* p = ::getenv("PATH");
  return FindExecutableInPath(name, p != nullptr ? p : kDefaultPath);
}

namespace {
absl::Status WaitError(int err, pid_t pid) {
  if (err == ECHILD) {
    return absl::NotFoundError(
        absl::StrCat("waitpid ", pid, ": not an unreaped child"));
  }
  return absl::ErrnoToStatus(err, absl::StrCat("waitpid ", pid));
}
}  // namespace

int DecodeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return -WTERMSIG(wait_status);
  return wait_status;  // stopped/continued: not produced without WUNTRACED
}

absl::StatusOr<int> WaitPid(pid_t pid) {
  int wstatus = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &wstatus, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return WaitError(errno, pid);
  return DecodeWaitStatus(wstatus);
}

absl::StatusOr<std::optional<int>> TryWaitPid(pid_t pid) {
  int wstatus = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &wstatus, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return WaitError(errno, pid);
  if (r == 0) return std::optional<int>();
  return std::optional<int>(DecodeWaitStatus(wstatus));
}

absl::StatusOr<pid_t> Spawn(const SpawnOptions& options) {
  // --- Everything the child needs, prepared here. ---
  if (options.argv.empty()) {
    return absl::InvalidArgumentError("Spawn: empty argv");
  }
  if (absl::Status s = CheckNoNul(options.argv, "argv"); !s.ok()) return s;
  if (options.env.has_value()) {
    if (absl::Status s = CheckNoNul(*options.env, "env"); !s.ok()) return s;
  }
  if (HasNul(options.cwd)) {
    return absl::InvalidArgumentError("Spawn: cwd contains a NUL byte");
  }
  if (options.parent_death_signal < 0 || options.parent_death_signal >= NSIG) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Spawn: bad parent_death_signal ", options.parent_death_signal));
  }

  std::string path;
  const std::string& arg0 = options.argv[0];
  if (arg0.empty()) {
    return absl::InvalidArgumentError("Spawn: empty program name");
  }
  if (!options.executable.empty()) {
    if (HasNul(options.executable)) {
      return absl::InvalidArgumentError("Spawn: executable contains a NUL byte");
    }
    path = options.executable;
  } else if (arg0.find('/') == std::string::npos) {
    absl::StatusOr<std::string> found =
        FindExecutableInPath(arg0, ExecPath(options.env));
    if (!found.ok()) return found.status();
    path = *std::move(found);
  } else {
    path = arg0;
  }

  std::vector<char*> argv = PointerArray(options.argv);
  std::vector<char*> envp;
  if (options.env.has_value()) envp = PointerArray(*options.env);

  std::vector<FdMove> moves;
  moves.reserve(options.fds.size());
  std::set<int> targets;
  int max_fd = 2;
  for (const auto& [child_fd, parent_fd] : options.fds) {
    if (child_fd < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("Spawn: negative child fd ", child_fd));
    }
    if (!targets.insert(child_fd).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("Spawn: child fd ", child_fd, " planned twice"));
    }
    if (parent_fd < 0 || ::fcntl(parent_fd, F_GETFD) < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Spawn: parent fd ", parent_fd, " for child fd ", child_fd,
          " is not open"));
    }
    moves.push_back(FdMove{child_fd, parent_fd});
    max_fd = std::max({max_fd, child_fd, parent_fd});
  }
  bool collide = false;
  for (size_t i = 0; i < moves.size() && !collide; ++i) {
    for (size_t j = 0; j < moves.size(); ++j) {
      if (i != j && moves[j].parent_fd == moves[i].child_fd) {
        collide = true;
        break;
      }
    }
  }
  std::vector<int> scratch(moves.size(), -1);

  absl::StatusOr<FdPair> pipe = MakePipe(O_NONBLOCK);
  if (!pipe.ok()) return pipe.status();
  // The error pipe must survive the fd plan: keep it off every target.
  if (targets.count(pipe->write.get()) > 0) {
    int fd = ::fcntl(pipe->write.get(), F_DUPFD_CLOEXEC, max_fd + 1);
    if (fd < 0) return absl::ErrnoToStatus(errno, "fcntl(F_DUPFD_CLOEXEC)");
    pipe->write.reset(fd);
  }
  max_fd = std::max(max_fd, pipe->write.get());

  long open_max = ::sysconf(_SC_OPEN_MAX);
  ChildPlan plan;
  plan.path = path.c_str();
  plan.argv = argv.data();
  plan.envp = options.env.has_value() ? envp.data() : environ;
  plan.cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
  plan.fds = moves.data();
  plan.num_fds = moves.size();
  plan.scratch_fds = scratch.data();
  plan.fds_collide = collide;
  plan.temp_fd_floor = max_fd + 1;
  plan.close_other_fds = options.close_other_fds;
  plan.max_fd_fallback =
      open_max > 0 ? static_cast<int>(std::min<long>(open_max, 1 << 20)) : 1024;
  plan.new_process_group = options.new_process_group;
  plan.new_session = options.new_session;
  plan.parent_death_signal = options.parent_death_signal;
  plan.parent_pid = ::getpid();
  plan.umask = options.umask;
  plan.error_fd = pipe->write.get();

  CloneGuard stack;
  if (absl::Status s = stack.Map(); !s.ok()) return s;

  // --- clone: all signals blocked so no handler runs in the child. ---
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  plan.restore_mask =
      options.signal_mask.has_value() ? &*options.signal_mask : &old;
  pid_t pid = ::clone(&process_internal::RunChild, stack.top(),
                      CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return absl::ErrnoToStatus(clone_errno, "clone");

  // --- The child has exec'd or exited (CLONE_VFORK). ---
  pipe->write.reset();
  // CLONE_VFORK: the child has exec'd or exited by now, and a child that
  // failed wrote its error (one write, under PIPE_BUF) before it exited. So
  // the error, if any, is in the pipe already: read what is there without
  // waiting for EOF. Waiting for EOF trusted every copy of the write end to
  // close at an exec; under load the pool's tests saw that wait last 60 s
  // after the child had exec'd and connected back (no process held the
  // write end by then).
  ChildError err{};
  absl::StatusOr<size_t> got = ReadSome(pipe->read.get(), &err, sizeof(err));
  if (got.ok() && *got == sizeof(err)) {
    (void)WaitPid(pid);  // it exits 127 right after the write
    const char* stage =
        process_internal::ChildStageName(static_cast<ChildStage>(err.stage));
    std::string what;
    switch (static_cast<ChildStage>(err.stage)) {
      case ChildStage::kExecve:
        what = absl::StrCat(stage, " ", path);
        break;
      case ChildStage::kChdir:
        what = absl::StrCat(stage, " ", options.cwd);
        break;
      default:
        what = stage;
    }
    return absl::ErrnoToStatus(err.err, absl::StrCat("Spawn: ", what));
  }
  // Nothing (EOF, or EAGAIN on the non-blocking pipe): exec'd.
  if (got.ok() ? *got == 0 : absl::IsUnavailable(got.status())) return pid;
  // A short or failed read: we cannot tell; do not leave the child behind.
  ::kill(pid, SIGKILL);
  (void)WaitPid(pid);
  return absl::InternalError(absl::StrCat(
      "Spawn: reading the child's status: ",
      got.ok() ? absl::StrCat("short read of ", *got, " bytes")
               : std::string(got.status().message())));
}

}  // namespace mp
