#include "process/internal/child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "absl/base/attributes.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// The child runs on a private stack that ASan knows nothing about (like a
// vfork child): its instrumentation of noreturn calls would misread the
// stack bounds, so the child-side functions are not instrumented.
#define MP_CHILD_CODE ABSL_ATTRIBUTE_NO_SANITIZE_ADDRESS

namespace mp {
namespace process_internal {

const char* ChildStageName(ChildStage stage) {
  switch (stage) {
    case ChildStage::kSignals:
      return "sigaction";
    case ChildStage::kSetsid:
      return "setsid";
    case ChildStage::kSetpgid:
      return "setpgid";
    case ChildStage::kPdeathsig:
      return "prctl(PR_SET_PDEATHSIG)";
    case ChildStage::kMoveFd:
      return "fcntl(F_DUPFD_CLOEXEC)";
    case ChildStage::kCloseOtherFds:
      return "close_range";
    case ChildStage::kDup2:
      return "dup2";
    case ChildStage::kChdir:
      return "chdir";
    case ChildStage::kExecve:
      return "execve";
  }
  return "child setup";
}

MP_CHILD_CODE int CloseRangeCloexec(unsigned first, unsigned last,
                      int max_fd_fallback) noexcept {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, first, last, CLOSE_RANGE_CLOEXEC) == 0) {
    return 0;
  }
  if (errno != ENOSYS && errno != EINVAL) return errno;
#endif
  // Old kernel: walk the fd table. EBADF just means "not open".
  for (long fd = first; fd <= static_cast<long>(last) && fd < max_fd_fallback;
       ++fd) {
    int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) {
      ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
    }
  }
  return 0;
}

namespace {

[[noreturn]] MP_CHILD_CODE void Fail(const ChildPlan& plan, ChildStage stage,
                       int err) noexcept {
  ChildError e{static_cast<int>(stage), err};
  ssize_t n;
  do {
    n = ::write(plan.error_fd, &e, sizeof(e));
  } while (n < 0 && errno == EINTR);
  ::_exit(127);
}

}  // namespace

MP_CHILD_CODE int RunChild(void* arg) noexcept {
  const ChildPlan& plan = *static_cast<const ChildPlan*>(arg);

  // Every handler back to SIG_DFL before any signal can be delivered: a
  // handler of the parent must never run here (we may share its memory).
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &dfl, nullptr);  // EINVAL for libc-reserved: fine
  }
  if (plan.restore_mask != nullptr) {
    ::pthread_sigmask(SIG_SETMASK, plan.restore_mask, nullptr);
  }

  if (plan.new_session) {
    if (::setsid() < 0) Fail(plan, ChildStage::kSetsid, errno);
  } else if (plan.new_process_group) {
    if (::setpgid(0, 0) != 0) Fail(plan, ChildStage::kSetpgid, errno);
  }

  if (plan.parent_death_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, plan.parent_death_signal, 0, 0, 0) != 0) {
      Fail(plan, ChildStage::kPdeathsig, errno);
    }
    // The parent may have died before the prctl: then nobody will send the
    // signal, so deliver it ourselves.
    if (::getppid() != plan.parent_pid) {
      ::kill(::getpid(), plan.parent_death_signal);
      ::_exit(127);
    }
  }

  if (plan.umask >= 0) ::umask(static_cast<mode_t>(plan.umask));

  // Fd plan. With collisions, first move every source above all fds named
  // in the plan (close-on-exec copies), so no dup2 clobbers a later source.
  const int* sources = nullptr;
  if (plan.fds_collide) {
    for (size_t i = 0; i < plan.num_fds; ++i) {
      int fd = ::fcntl(plan.fds[i].parent_fd, F_DUPFD_CLOEXEC,
                       plan.temp_fd_floor);
      if (fd < 0) Fail(plan, ChildStage::kMoveFd, errno);
      plan.scratch_fds[i] = fd;
    }
    sources = plan.scratch_fds;
  }
  if (plan.close_other_fds) {
    int err = CloseRangeCloexec(3, ~0U, plan.max_fd_fallback);
    if (err != 0) Fail(plan, ChildStage::kCloseOtherFds, err);
  }
  for (size_t i = 0; i < plan.num_fds; ++i) {
    const int target = plan.fds[i].child_fd;
    const int source = sources ? sources[i] : plan.fds[i].parent_fd;
    if (source == target) {
      // dup2(fd, fd) keeps close-on-exec; clear it explicitly.
      if (::fcntl(target, F_SETFD, 0) != 0) Fail(plan, ChildStage::kDup2, errno);
    } else {
      int r;
      do {
        r = ::dup2(source, target);
      } while (r < 0 && errno == EINTR);
      if (r < 0) Fail(plan, ChildStage::kDup2, errno);
    }
  }

  if (plan.cwd != nullptr && ::chdir(plan.cwd) != 0) {
    Fail(plan, ChildStage::kChdir, errno);
  }

  ::execve(plan.path, plan.argv, plan.envp);
  Fail(plan, ChildStage::kExecve, errno);
}

}  // namespace process_internal
}  // namespace mp
