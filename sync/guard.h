// -----------------------------------------------------------------------------
// File: sync/guard.h
// -----------------------------------------------------------------------------
//
// `mp::Guard` acquires a lock for a scope and releases it at the end
// (Python: `with lock:`). Works with `mp::Lock`, `mp::RLock`,
// `mp::Semaphore`, `mp::BoundedSemaphore` — anything with
// `absl::Status Acquire(absl::Duration)` and `absl::Status Release()`.
//
//   {
//     mp::Guard guard(lock);
//     if (mp::OwnerDied(guard.status())) { Repair(); lock.MarkConsistent(); }
//     ...  // critical section
//   }      // released here
//
//   mp::Guard g(lock, absl::Milliseconds(10));
//   if (!g.held()) return g.status();    // kDeadlineExceeded

#ifndef MP_SYNC_GUARD_H_
#define MP_SYNC_GUARD_H_

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace mp {

template <typename L>
class [[nodiscard]] Guard {
 public:
  // Acquires `lock` (waiting at most `timeout`). `held()` tells whether it
  // did: after OK, and after `kDataLoss` (acquired, previous owner died).
  explicit Guard(L& lock, absl::Duration timeout = absl::InfiniteDuration())
      : lock_(&lock), status_(lock.Acquire(timeout)) {
    held_ = status_.ok() || status_.code() == absl::StatusCode::kDataLoss;
  }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  ~Guard() {
    if (held_) lock_->Release().IgnoreError();
  }

  bool held() const { return held_; }
  // The status of the acquisition.
  const absl::Status& status() const { return status_; }

  // Guard::Release(): releases early; the destructor then does nothing.
  absl::Status Release() {
    if (!held_) return absl::FailedPreconditionError("Guard does not hold the lock");
    held_ = false;
    return lock_->Release();
  }

 private:
  L* lock_;
  absl::Status status_;
  bool held_ = false;
};

}  // namespace mp

#endif  // MP_SYNC_GUARD_H_
