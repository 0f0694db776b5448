#include "sync/semaphore.h"

#include "sync/internal/futex.h"

namespace mp {

using sync_internal::Deadline;
using sync_internal::FutexResult;

bool Semaphore::TryDecrement() {
  uint32_t v = value_.load(std::memory_order_relaxed);
  while (v > 0) {
    if (value_.compare_exchange_weak(v, v - 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

bool Semaphore::TryAcquire() { return TryDecrement(); }

absl::Status Semaphore::Acquire(absl::Duration timeout) {
  if (TryDecrement()) return absl::OkStatus();
  const Deadline deadline = Deadline::After(timeout);
  // Spin, then block: a Release() within microseconds is taken without a
  // sleep (nor a wake-up call: a poller is not counted in waiters_). A zero
  // timeout's deadline has passed already: no polling then.
  if (sync_internal::SpinUntil([this] { return TryDecrement(); }, deadline)) {
    return absl::OkStatus();
  }
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  // waiters_ is raised (a full barrier) before the kernel re-reads the
  // value in FUTEX_WAIT; Release() adds (a full barrier) before it reads
  // waiters_: one of the two always sees the other.
  bool got = false;
  for (;;) {
    if (TryDecrement()) {
      got = true;
      break;
    }
    if (sync_internal::FutexWait(&value_, 0, deadline) ==
        FutexResult::kTimedOut) {
      got = TryDecrement();
      break;
    }
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  if (got) return absl::OkStatus();
  return absl::DeadlineExceededError("mp::Semaphore: timed out");
}

absl::Status Semaphore::Release(uint32_t n) {
  if (n == 0) return absl::InvalidArgumentError("Semaphore::Release(0)");
  uint32_t v = value_.load(std::memory_order_relaxed);
  for (;;) {
    if (n > max_ || v > max_ - n) {
      if (max_ != kMaxValue) {
        return absl::FailedPreconditionError(
            "mp::BoundedSemaphore released too many times");
      }
      return absl::OutOfRangeError("mp::Semaphore value would overflow");
    }
    if (value_.compare_exchange_weak(v, v + n, std::memory_order_seq_cst,
                                     std::memory_order_relaxed)) {
      break;
    }
  }
  if (waiters_.load(std::memory_order_seq_cst) > 0) {
    sync_internal::FutexWake(&value_, static_cast<int>(n));
  }
  return absl::OkStatus();
}

}  // namespace mp
