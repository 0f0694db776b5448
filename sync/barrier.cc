#include "sync/barrier.h"

#include <linux/futex.h>

namespace mp {

using sync_internal::Deadline;
using sync_internal::RobustMutex;

namespace {
constexpr absl::Duration kDeathCheckInterval = absl::Milliseconds(100);
}  // namespace

Barrier::Barrier(uint32_t parties, absl::Duration timeout)
    : parties_(parties),
      default_timeout_ns_(timeout == absl::InfiniteDuration()
                              ? -1
                              : absl::ToInt64Nanoseconds(timeout)) {}

void Barrier::LockInternal() {
  if (mu_.Lock(Deadline::Infinite()) == RobustMutex::Result::kOwnerDied) {
    // A party died in the middle of the barrier's bookkeeping.
    mu_.MarkConsistent();
    if (!broken_) BreakLocked();
  }
}

void Barrier::BreakLocked() {
  broken_ = 1;
  if (count_ > 0) {
    aborted_generation_ = generation_.load(std::memory_order_relaxed);
    aborted_valid_ = 1;
    count_ = 0;
    generation_.fetch_add(1, std::memory_order_release);
    sync_internal::FutexWake(&generation_, sync_internal::kWakeAll);
  }
}

bool Barrier::DeadWaiterLocked() {
  bool dead = false;
  for (RobustMutex& slot : slots_) {
    if (slot.word() & FUTEX_OWNER_DIED) {
      slot.ClearOwnerDied();
      dead = true;
    }
  }
  return dead;
}

absl::StatusOr<int> Barrier::Wait(absl::Duration timeout) {
  return WaitImpl(nullptr, timeout);
}

absl::StatusOr<int> Barrier::Wait(absl::FunctionRef<void()> action,
                                  absl::Duration timeout) {
  return WaitImpl(&action, timeout);
}

absl::StatusOr<int> Barrier::WaitImpl(absl::FunctionRef<void()>* action,
                                      absl::Duration timeout) {
  if (parties_ == 0) {
    return absl::InvalidArgumentError("mp::Barrier needs at least one party");
  }
  if (timeout == kDefaultTimeout) {
    timeout = default_timeout_ns_ < 0 ? absl::InfiniteDuration()
                                      : absl::Nanoseconds(default_timeout_ns_);
  }
  const Deadline deadline = Deadline::After(timeout);
  const absl::Status broken =
      absl::AbortedError("mp::Barrier is broken");
  LockInternal();
  if (DeadWaiterLocked()) BreakLocked();
  if (broken_) {
    mu_.Unlock();
    return broken;
  }
  const int index = static_cast<int>(count_++);
  if (count_ == parties_) {
    if (action != nullptr) (*action)();
    count_ = 0;
    generation_.fetch_add(1, std::memory_order_release);
    sync_internal::FutexWake(&generation_, sync_internal::kWakeAll);
    mu_.Unlock();
    return index;
  }
  const uint32_t gen = generation_.load(std::memory_order_relaxed);
  RobustMutex* slot = nullptr;
  for (RobustMutex& s : slots_) {
    const RobustMutex::Result r = s.TryLock();
    if (r == RobustMutex::Result::kOwnerDied) s.MarkConsistent();
    if (r == RobustMutex::Result::kAcquired ||
        r == RobustMutex::Result::kOwnerDied) {
      slot = &s;
      break;
    }
  }
  mu_.Unlock();
  absl::StatusOr<int> result;
  for (;;) {
    sync_internal::FutexWait(
        &generation_, gen,
        Deadline::Earlier(deadline, Deadline::After(kDeathCheckInterval)));
    LockInternal();
    if (generation_.load(std::memory_order_relaxed) != gen) {
      if (aborted_valid_ && aborted_generation_ == gen) {
        result = broken;
      } else {
        result = index;
      }
      break;
    }
    if (broken_) {
      result = broken;
      break;
    }
    if (DeadWaiterLocked()) {
      BreakLocked();
      result = broken;
      break;
    }
    if (deadline.Expired()) {
      BreakLocked();
      result = absl::DeadlineExceededError("mp::Barrier::Wait: timed out");
      break;
    }
    mu_.Unlock();
  }
  if (slot != nullptr) slot->Unlock();
  mu_.Unlock();
  return result;
}

void Barrier::Reset() {
  LockInternal();
  if (count_ > 0) BreakLocked();  // aborts the current waiters
  broken_ = 0;
  count_ = 0;
  mu_.Unlock();
}

void Barrier::Abort() {
  LockInternal();
  if (count_ > 0) {
    BreakLocked();
  } else {
    broken_ = 1;
  }
  mu_.Unlock();
}

uint32_t Barrier::n_waiting() const {
  // Racy snapshot, like Python's.
  return broken_ ? 0 : count_;
}

bool Barrier::broken() const { return broken_ != 0; }

}  // namespace mp
