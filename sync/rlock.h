// -----------------------------------------------------------------------------
// File: sync/rlock.h
// -----------------------------------------------------------------------------
//
// `mp::RLock` is a recursive lock shared between processes (Python:
// `multiprocessing.RLock`): the thread that holds it may acquire it again,
// and must release it as many times. Robust like `mp::Lock`: when the holder
// dies, the next acquirer gets it with `kDataLoss` (see sync/lock.h).
// Lives in shared memory like `mp::Lock` (standard layout, 40 bytes, zero
// bytes = unlocked).
//
//   mp::RLock& lock = ...;                       // in shared memory
//   MP_RETURN_IF_ERROR(lock.Acquire());
//   MP_RETURN_IF_ERROR(lock.Acquire());          // same thread: count 2
//   lock.Release();  lock.Release();

#ifndef MP_SYNC_RLOCK_H_
#define MP_SYNC_RLOCK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sync/internal/robust_mutex.h"
#include "sync/lock.h"

namespace mp {

class RLock {
 public:
  constexpr RLock() = default;
  RLock(const RLock&) = delete;
  RLock& operator=(const RLock&) = delete;

  // RLock::Acquire()
  //
  // As `Lock::Acquire()`, except that the holding thread gets it again at
  // once (the recursion count goes up). Returns OK, or `kDataLoss` when
  // acquired after the previous owner died. Errors: `kDeadlineExceeded`.
  absl::Status Acquire(absl::Duration timeout = absl::InfiniteDuration());
  bool TryAcquire();

  // RLock::Release()
  //
  // Errors: `kFailedPrecondition` when the calling thread does not hold it
  // (Python's "cannot release un-acquired lock").
  absl::Status Release();

  bool Locked() const { return mutex_.Locked(); }
  bool HeldByCurrentThread() const { return mutex_.HeldByCurrentThread(); }
  // RLock::count(): the recursion depth, meaningful to the holder only.
  uint32_t count() const { return mutex_.HeldByCurrentThread() ? mutex_.count() : 0; }

  // RLock::MarkConsistent() / Inconsistent(): as for `mp::Lock`.
  absl::Status MarkConsistent();
  bool Inconsistent() const { return mutex_.Inconsistent(); }

 private:
  friend class Condition;
  sync_internal::RobustMutex mutex_;
};

}  // namespace mp

#endif  // MP_SYNC_RLOCK_H_
