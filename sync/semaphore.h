// -----------------------------------------------------------------------------
// File: sync/semaphore.h
// -----------------------------------------------------------------------------
//
// `mp::Semaphore` and `mp::BoundedSemaphore`: counting semaphores shared
// between processes (Python: `multiprocessing.Semaphore`,
// `BoundedSemaphore`). Any process may release. A `BoundedSemaphore` refuses
// to be released above its initial value.
//
// They live in shared memory (standard layout, no pointers): in a
// `SharedMemory` segment (`mp::SharedObject<mp::Semaphore>::Create(4)`,
// attached by name from any child) or a MAP_SHARED mapping a fork child
// inherits.
//
//   mp::Semaphore& slots = ...;                 // Semaphore(4) in shared memory
//   if (slots.Acquire(absl::Seconds(1)).ok()) {
//     Work();
//     slots.Release();
//   }
//
// A semaphore has no owner, so nothing is "robust" about it: a process that
// dies after Acquire() simply never releases its unit.

#ifndef MP_SYNC_SEMAPHORE_H_
#define MP_SYNC_SEMAPHORE_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace mp {

class Semaphore {
 public:
  // The largest value a semaphore can hold.
  static constexpr uint32_t kMaxValue = 0x7fffffff;

  // `value` above kMaxValue is clamped to it.
  explicit Semaphore(uint32_t value = 1)
      : value_(value > kMaxValue ? kMaxValue : value), max_(kMaxValue) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // Semaphore::Acquire()
  //
  // Decrements the value, waiting up to `timeout` while it is zero (Python's
  // `acquire(blocking, timeout)`; zero or negative: do not wait). Signals do
  // not shorten the wait. Errors: `kDeadlineExceeded`. Spins, then blocks:
  // polls the value for up to ~50 us (unless the process may run on one CPU
  // only) before sleeping on a futex.
  absl::Status Acquire(absl::Duration timeout = absl::InfiniteDuration());
  bool TryAcquire();

  // Semaphore::Release()
  //
  // Adds `n` and wakes up to `n` waiters (Python's `release(n)`).
  // Errors: `kFailedPrecondition` when a BoundedSemaphore would exceed its
  // initial value (Python's ValueError), `kOutOfRange` above kMaxValue,
  // `kInvalidArgument` for n == 0. Nothing is added on error.
  absl::Status Release(uint32_t n = 1);

  // Semaphore::value(): the current value (Python's `get_value()`).
  uint32_t value() const { return value_.load(std::memory_order_relaxed); }

 protected:
  Semaphore(uint32_t value, uint32_t max) : value_(value), max_(max) {}

 private:
  bool TryDecrement();

  std::atomic<uint32_t> value_;
  std::atomic<uint32_t> waiters_{0};
  uint32_t max_;
  uint32_t reserved_ = 0;
};

class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(uint32_t value = 1)
      : Semaphore(value > kMaxValue ? kMaxValue : value,
                  value > kMaxValue ? kMaxValue : value) {}
};

}  // namespace mp

#endif  // MP_SYNC_SEMAPHORE_H_
