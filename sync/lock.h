// -----------------------------------------------------------------------------
// File: sync/lock.h
// -----------------------------------------------------------------------------
//
// `mp::Lock` is a mutual exclusion lock shared between processes (Python:
// `multiprocessing.Lock`), robust where Python's deadlocks: when its holder
// dies inside the critical section (SIGKILL included), the next acquirer gets
// the lock and is told, so it can repair the shared data.
//
// A `Lock` lives in shared memory: put it in a `SharedMemory` segment (e.g.
// `mp::SharedObject<mp::Lock>`, re-attached by name from spawn/forkserver
// children) or in any MAP_SHARED mapping a fork child inherits. It is
// standard-layout, holds no pointers, and 40 zero bytes are an unlocked Lock.
//
//   absl::StatusOr<mp::SharedObject<mp::Lock>> lock =
//       mp::SharedObject<mp::Lock>::Create();
//   // in any process that has it mapped:
//   {
//     mp::Guard guard(**lock);                  // Python: `with lock:`
//     if (mp::OwnerDied(guard.status())) { Repair(); (*lock)->MarkConsistent(); }
//     ++counter;
//   }
//
// Owner death is detected by the kernel (robust futexes; see docs/sync.md):
// `Acquire()` then returns `kDataLoss` *with the lock held*. Until the holder
// calls `MarkConsistent()`, every later acquirer is told the same, so data a
// dead process left half-written is never silently trusted.
//
// Unlike Python's Lock, only the holder may release it (ownership is what
// makes robustness possible); use `mp::Semaphore` for a lock released by
// another process. Acquiring a Lock the calling thread already holds fails
// with `kFailedPrecondition` instead of deadlocking (use `mp::RLock`).
//
// Uncontended, Acquire is one compare-and-swap and Release a plain store
// (no locked instruction: sleepers order themselves against it with
// membarrier(2), see docs/sync.md); the futex wake system call happens only
// when a thread sleeps.

#ifndef MP_SYNC_LOCK_H_
#define MP_SYNC_LOCK_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sync/internal/robust_mutex.h"

namespace mp {

class Condition;

class Lock {
 public:
  constexpr Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  // Lock::Acquire()
  //
  // Blocks until the lock is acquired or `timeout` passes (Python's
  // `acquire(blocking, timeout)`: `absl::InfiniteDuration()` is
  // `timeout=None`; a zero or negative timeout is `blocking=False`). Signals
  // do not shorten the wait.
  //
  // Returns OK when acquired. `kDataLoss` when acquired but the previous
  // owner died holding it (or a later holder did not `MarkConsistent()`):
  // the caller holds the lock and must release it.
  // Errors (lock not acquired): `kDeadlineExceeded`; `kFailedPrecondition`
  // when the calling thread holds it already.
  absl::Status Acquire(absl::Duration timeout = absl::InfiniteDuration()) {
    const sync_internal::RobustMutex::Result r = mutex_.LockFor(timeout);
    if (__builtin_expect(r == sync_internal::RobustMutex::Result::kAcquired,
                         1)) {
      return absl::OkStatus();
    }
    return AcquireError(r);
  }

  // Lock::TryAcquire()
  //
  // One attempt; true when acquired (check `Inconsistent()` for a dead
  // previous owner).
  bool TryAcquire();

  // Lock::Release()
  //
  // Errors: `kFailedPrecondition` when the calling thread does not hold it
  // (Python's "release unlocked lock").
  absl::Status Release() {
    if (__builtin_expect(mutex_.Unlock(), 1)) return absl::OkStatus();
    return ReleaseError();
  }

  // Lock::Locked(): whether some thread holds it (Python's `locked()`).
  bool Locked() const { return mutex_.Locked(); }
  // Lock::HeldByCurrentThread()
  bool HeldByCurrentThread() const { return mutex_.HeldByCurrentThread(); }

  // Lock::MarkConsistent()
  //
  // Declares the data repaired after a `kDataLoss` acquisition (like
  // `pthread_mutex_consistent`). Errors: `kFailedPrecondition` when the
  // calling thread does not hold the lock.
  absl::Status MarkConsistent();

  // Lock::Inconsistent(): an owner died and nobody marked the data consistent.
  bool Inconsistent() const { return mutex_.Inconsistent(); }

 private:
  friend class Condition;
  static absl::Status AcquireError(sync_internal::RobustMutex::Result r);
  static absl::Status ReleaseError();
  sync_internal::RobustMutex mutex_;
};

// OwnerDied()
//
// Whether `status` (from `Acquire()`, `Wait()`, a `Guard`) says the lock was
// acquired after its owner died: the caller holds the lock.
inline bool OwnerDied(const absl::Status& status) {
  return status.code() == absl::StatusCode::kDataLoss;
}

namespace sync_internal {
// Maps a RobustMutex result to the Status of Acquire() for `what`.
absl::Status AcquireStatus(RobustMutex::Result r, const char* what);
}  // namespace sync_internal

}  // namespace mp

#endif  // MP_SYNC_LOCK_H_
