#include "process/internal/pidfd.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace mp {
namespace process_internal {

int PidfdOpen(pid_t pid) noexcept {
  // pidfds are always close-on-exec.
  long r = ::syscall(SYS_pidfd_open, pid, 0);
  return r < 0 ? -1 : static_cast<int>(r);
}

namespace {
std::atomic<bool> g_disabled{false};
}  // namespace

void DisablePidfdForTesting(bool disabled) noexcept { g_disabled = disabled; }

bool PidfdSupported() noexcept {
  if (g_disabled.load(std::memory_order_relaxed)) return false;
  // 0 = unknown, 1 = yes, 2 = no.
  static std::atomic<int> state{0};
  int s = state.load(std::memory_order_relaxed);
  if (s == 0) {
    int fd = PidfdOpen(::getpid());
    s = fd >= 0 ? 1 : 2;
    if (fd >= 0) ::close(fd);
    state.store(s, std::memory_order_relaxed);
  }
  return s == 1;
}

}  // namespace process_internal
}  // namespace mp
