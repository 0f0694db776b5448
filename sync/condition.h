// -----------------------------------------------------------------------------
// File: sync/condition.h
// -----------------------------------------------------------------------------
//
// `mp::Condition` is a condition variable shared between processes (Python:
// `multiprocessing.Condition`). Like Python's, it owns an `RLock` unless
// given a lock; a given `Lock`/`RLock` must live in the same shared mapping
// as the Condition (it is found by its offset from the Condition, since the
// mapping's address differs between processes).
//
//   struct Shared { mp::Condition cv; int items = 0; };  // in shared memory
//   // consumer:
//   mp::Guard g(s.cv);
//   absl::Status st = s.cv.WaitFor([&] { return s.items > 0; }, absl::Seconds(5));
//   // producer:
//   mp::Guard g(s.cv);
//   ++s.items;
//   s.cv.Notify();
//
// Robust: waiters re-acquire the lock even if its holder died, and are told
// (`kDataLoss`). A waiter that dies only leaves a stale count (extra wake-ups).
// Like POSIX condition variables, `Wait()` may return spuriously (a
// `Notify(1)` can wake two waiters); `WaitFor()` loops on its predicate.

#ifndef MP_SYNC_CONDITION_H_
#define MP_SYNC_CONDITION_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sync/internal/futex.h"
#include "sync/internal/robust_mutex.h"
#include "sync/lock.h"
#include "sync/rlock.h"

namespace mp {

class Condition {
 public:
  // Uses its own RLock.
  Condition();
  // Uses `lock`, which must be in the same mapping as this Condition and
  // outlive it.
  explicit Condition(Lock* lock);
  explicit Condition(RLock* lock);
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  // Condition::Acquire() / Release(): of the underlying lock (see Lock/RLock).
  absl::Status Acquire(absl::Duration timeout = absl::InfiniteDuration());
  absl::Status Release();

  // Condition::Wait()
  //
  // Releases the lock (all recursion levels), waits for a notification or
  // `timeout`, and re-acquires the lock (without timeout) before returning.
  // Returns OK when notified (or woken spuriously); `kDataLoss` when
  // re-acquired after the lock's owner died (the lock is held).
  // Errors: `kDeadlineExceeded` (the lock is held again);
  // `kFailedPrecondition` when the calling thread does not hold the lock.
  absl::Status Wait(absl::Duration timeout = absl::InfiniteDuration());

  // Condition::WaitFor()
  //
  // Waits until `predicate()` is true (checked with the lock held, first
  // before any wait) or `timeout` passes (Python's `wait_for`). Returns OK when
  // the predicate holds; `kDeadlineExceeded` when it still does not;
  // `kDataLoss` as `Wait()`; `kFailedPrecondition` when the lock is not held.
  template <typename Predicate>
  absl::Status WaitFor(Predicate predicate,
                       absl::Duration timeout = absl::InfiniteDuration()) {
    const sync_internal::Deadline deadline =
        sync_internal::Deadline::After(timeout);
    while (!predicate()) {
      if (deadline.Expired()) {
        return absl::DeadlineExceededError("Condition::WaitFor: timed out");
      }
      absl::Status s = WaitUntil(deadline);
      if (!s.ok() && s.code() != absl::StatusCode::kDeadlineExceeded) return s;
    }
    return absl::OkStatus();
  }

  // Condition::Notify() / NotifyAll()
  //
  // Wakes up to `n` (all) waiters. Errors: `kFailedPrecondition` when the
  // calling thread does not hold the lock (Python's RuntimeError).
  absl::Status Notify(int n = 1);
  absl::Status NotifyAll();

 private:
  sync_internal::RobustMutex& mutex();
  absl::Status WaitUntil(sync_internal::Deadline deadline);

  std::atomic<uint32_t> seq_{0};
  std::atomic<uint32_t> waiters_{0};
  uint32_t recursive_;   // the lock is an RLock
  uint32_t reserved_ = 0;
  int64_t lock_offset_;  // the lock's RobustMutex, relative to `this`
  RLock own_lock_;
};

}  // namespace mp

#endif  // MP_SYNC_CONDITION_H_
