#include "sync/event.h"

#include "sync/internal/futex.h"

namespace mp {

using sync_internal::Deadline;
using sync_internal::FutexResult;

void Event::Set() {
  flag_.store(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) > 0) {
    sync_internal::FutexWake(&flag_, sync_internal::kWakeAll);
  }
}

bool Event::Wait(absl::Duration timeout) {
  if (IsSet()) return true;
  const Deadline deadline = Deadline::After(timeout);
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
