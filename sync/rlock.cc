#include "sync/rlock.h"

namespace mp {

absl::Status RLock::Acquire(absl::Duration timeout) {
  sync_internal::RobustMutex::Result r =
      mutex_.LockFor(timeout, /*recursive=*/true);
  if (r == sync_internal::RobustMutex::Result::kAcquired) {
    return absl::OkStatus();
  }
  return sync_internal::AcquireStatus(r, "mp::RLock");
}

bool RLock::TryAcquire() {
  sync_internal::RobustMutex::Result r = mutex_.TryLock(/*recursive=*/true);
  return r == sync_internal::RobustMutex::Result::kAcquired ||
         r == sync_internal::RobustMutex::Result::kOwnerDied;
}

absl::Status RLock::Release() {
  if (mutex_.Unlock()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "mp::RLock::Release: cannot release un-acquired lock");
}

absl::Status RLock::MarkConsistent() {
  if (mutex_.MarkConsistent()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "mp::RLock::MarkConsistent: the calling thread does not hold the lock");
}

}  // namespace mp
