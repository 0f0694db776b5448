#include "sync/condition.h"

#include <climits>

namespace mp {

using sync_internal::Deadline;
using sync_internal::FutexResult;
using sync_internal::RobustMutex;

namespace {
int64_t OffsetFrom(const void* self, const void* target) {
  return reinterpret_cast<const char*>(target) -
         reinterpret_cast<const char*>(self);
}
}  // namespace

Condition::Condition()
    : recursive_(1), lock_offset_(OffsetFrom(this, &own_lock_.mutex_)) {}
Condition::Condition(Lock* lock)
    : recursive_(0), lock_offset_(OffsetFrom(this, &lock->mutex_)) {}
Condition::Condition(RLock* lock)
    : recursive_(1), lock_offset_(OffsetFrom(this, &lock->mutex_)) {}

RobustMutex& Condition::mutex() {
  return *reinterpret_cast<RobustMutex*>(reinterpret_cast<char*>(this) +
                                         lock_offset_);
}

absl::Status Condition::Acquire(absl::Duration timeout) {
  return sync_internal::AcquireStatus(mutex().LockFor(timeout, recursive_ != 0),
                                      "mp::Condition's lock");
}

absl::Status Condition::Release() {
  if (mutex().Unlock()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "mp::Condition::Release: cannot release un-acquired lock");
}

absl::Status Condition::Wait(absl::Duration timeout) {
  return WaitUntil(Deadline::After(timeout));
}

absl::Status Condition::WaitUntil(Deadline deadline) {
  RobustMutex& m = mutex();
  if (!m.HeldByCurrentThread()) {
    return absl::FailedPreconditionError(
        "mp::Condition::Wait: cannot wait on un-acquired lock");
  }
  const uint32_t seq = seq_.load(std::memory_order_acquire);
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  const uint32_t count = m.UnlockAll();
  bool notified = false;
  for (;;) {
    FutexResult r = sync_internal::FutexWait(&seq_, seq, deadline);
    notified = seq_.load(std::memory_order_acquire) != seq;
    if (notified || r == FutexResult::kTimedOut) break;
    // Woken without a new sequence number: spurious; wait on.
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  RobustMutex::Result lr = m.Relock(count);
  if (lr == RobustMutex::Result::kOwnerDied) {
    return sync_internal::AcquireStatus(lr, "mp::Condition's lock");
  }
  if (!notified) {
    return absl::DeadlineExceededError("mp::Condition::Wait: timed out");
  }
  return absl::OkStatus();
}

absl::Status Condition::Notify(int n) {
  if (!mutex().HeldByCurrentThread()) {
    return absl::FailedPreconditionError(
        "mp::Condition::Notify: cannot notify on un-acquired lock");
  }
  if (n <= 0) return absl::OkStatus();
  if (waiters_.load(std::memory_order_seq_cst) > 0) {
    seq_.fetch_add(1, std::memory_order_release);
    sync_internal::FutexWake(&seq_, n);
  }
  return absl::OkStatus();
}

absl::Status Condition::NotifyAll() { return Notify(INT_MAX); }

}  // namespace mp
