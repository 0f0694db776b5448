#include "sync/internal/futex.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mp {
namespace sync_internal {

int64_t Deadline::NowNs() { return ::mp::MonotonicNanos(); }

Deadline Deadline::After(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return Infinite();
  const int64_t now = NowNs();
  if (timeout <= absl::ZeroDuration()) return Deadline(now);
  const int64_t d = absl::ToInt64Nanoseconds(timeout);  // saturates
  if (d >= kInfinite - now) return Infinite();
  return Deadline(now + d);
}

bool Deadline::Expired() const { return !infinite() && NowNs() >= ns_; }

absl::Duration Deadline::Remaining() const {
  if (infinite()) return absl::InfiniteDuration();
  const int64_t left = ns_ - NowNs();
  return left <= 0 ? absl::ZeroDuration() : absl::Nanoseconds(left);
}

timespec Deadline::ToTimespec() const {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(ns_ / 1000000000);
  ts.tv_nsec = static_cast<long>(ns_ % 1000000000);
  return ts;
}

long SysFutex(void* uaddr, int op, uint32_t val, const timespec* timeout,
              void* uaddr2, uint32_t val3) {
  long r = ::syscall(SYS_futex, uaddr, op, val, timeout, uaddr2, val3);
  return r < 0 ? -errno : r;
}

int SysGettid() { return static_cast<int>(::syscall(SYS_gettid)); }

long SysGetRobustList(void** head, size_t* len) {
  long r = ::syscall(SYS_get_robust_list, 0, head, len);
  return r < 0 ? -errno : r;
}

long SysSetRobustList(void* head, size_t len) {
  long r = ::syscall(SYS_set_robust_list, head, len);
  return r < 0 ? -errno : r;
}

long SysMembarrier(int cmd, unsigned flags) {
  long r = ::syscall(SYS_membarrier, cmd, flags, 0);
  return r < 0 ? -errno : r;
}

namespace {

[[noreturn]] void Die(const char* what, long err) {
  std::fprintf(stderr, "mp futex: %s failed: %s\n", what,
               std::strerror(static_cast<int>(-err)));
  std::abort();
}

// FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC timeout; it exists
// since Linux 2.6.25. Should it be missing (ENOSYS), FUTEX_WAIT with the
// remaining relative time does the same.
std::atomic<bool> g_no_bitset{false};

}  // namespace

FutexResult FutexWait(std::atomic<uint32_t>* word, uint32_t expected,
                      Deadline deadline) {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "");
  for (;;) {
    if (deadline.Expired()) return FutexResult::kTimedOut;
    long r;
    if (!g_no_bitset.load(std::memory_order_relaxed)) {
      timespec abs = deadline.ToTimespec();
      r = SysFutex(word, FUTEX_WAIT_BITSET, expected,
                   deadline.infinite() ? nullptr : &abs, nullptr,
                   FUTEX_BITSET_MATCH_ANY);
      if (r == -ENOSYS) {
        g_no_bitset.store(true, std::memory_order_relaxed);
        continue;
      }
    } else {
      timespec rel;
      const timespec* prel = nullptr;
      if (!deadline.infinite()) {
        int64_t left = deadline.ns() - Deadline::NowNs();
        if (left <= 0) return FutexResult::kTimedOut;
        rel.tv_sec = static_cast<time_t>(left / 1000000000);
        rel.tv_nsec = static_cast<long>(left % 1000000000);
        prel = &rel;
      }
      r = SysFutex(word, FUTEX_WAIT, expected, prel, nullptr, 0);
    }
    if (r == 0) return FutexResult::kWoken;
    if (r == -EAGAIN) return FutexResult::kValueChanged;
    if (r == -ETIMEDOUT) return FutexResult::kTimedOut;
    if (r == -EINTR) continue;  // same absolute deadline
    Die("FUTEX_WAIT", r);
  }
}

int FutexWake(std::atomic<uint32_t>* word, int count) {
  long r = SysFutex(word, FUTEX_WAKE, static_cast<uint32_t>(count), nullptr,
                    nullptr, 0);
  if (r < 0) Die("FUTEX_WAKE", r);
  return static_cast<int>(r);
}

}  // namespace sync_internal
}  // namespace mp
