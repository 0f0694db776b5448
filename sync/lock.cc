#include "sync/lock.h"

#include "absl/strings/str_cat.h"

namespace mp {
namespace sync_internal {

absl::Status AcquireStatus(RobustMutex::Result r, const char* what) {
  switch (r) {
    case RobustMutex::Result::kAcquired:
      return absl::OkStatus();
    case RobustMutex::Result::kOwnerDied:
      return absl::DataLossError(absl::StrCat(
          what, " acquired, but its previous owner died holding it: repair "
                "the shared data, then call MarkConsistent()"));
    case RobustMutex::Result::kTimedOut:
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": timed out waiting for the lock"));
    case RobustMutex::Result::kDeadlock:
      return absl::FailedPreconditionError(absl::StrCat(
          what, " is already held by this thread (waiting would deadlock; "
                "use mp::RLock)"));
  }
  return absl::InternalError("bad RobustMutex::Result");
}

}  // namespace sync_internal

absl::Status Lock::AcquireError(sync_internal::RobustMutex::Result r) {
  return sync_internal::AcquireStatus(r, "mp::Lock");
}

bool Lock::TryAcquire() {
  sync_internal::RobustMutex::Result r = mutex_.TryLock();
  return r == sync_internal::RobustMutex::Result::kAcquired ||
         r == sync_internal::RobustMutex::Result::kOwnerDied;
}

absl::Status Lock::ReleaseError() {
  return absl::FailedPreconditionError(
      "mp::Lock::Release: the calling thread does not hold the lock");
}

absl::Status Lock::MarkConsistent() {
  if (mutex_.MarkConsistent()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "mp::Lock::MarkConsistent: the calling thread does not hold the lock");
}

}  // namespace mp
