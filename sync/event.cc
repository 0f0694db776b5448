#include "sync/event.h"

#include "sync/internal/futex.h"

namespace mp {

using sync_internal::Deadline;
using sync_internal::FutexResult;

// No lost wake-up: Set() stores the flag, then reads waiters_; a waiter
// raises waiters_, then sleeps only while the kernel still reads the flag as
// 0 (FUTEX_WAIT compares under the futex's lock). All four are seq_cst, so
// in their single total order either the waiter's increment precedes the
// setter's read (the setter wakes it) or the setter's store precedes the
// waiter's increment and hence its futex's read (it does not sleep). A
// waiter that only polls is not counted: the setter makes no system call
// for it, and it sees the flag by itself.
void Event::Set() {
  flag_.store(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) > 0) {
    sync_internal::FutexWake(&flag_, sync_internal::kWakeAll);
  }
}

bool Event::Wait(absl::Duration timeout) {
  if (IsSet()) return true;
  const Deadline deadline = Deadline::After(timeout);
  // Spin, then block: a Set() within microseconds is seen without sleeping
  // (on one CPU only, no polling: see SpinUntil()).
  if (sync_internal::SpinUntil([this] { return IsSet(); }, deadline)) {
    return true;
  }
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  while (flag_.load(std::memory_order_seq_cst) == 0) {
    if (sync_internal::FutexWait(&flag_, 0, deadline) ==
        FutexResult::kTimedOut) {
      break;
    }
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  return IsSet();
}

}  // namespace mp
