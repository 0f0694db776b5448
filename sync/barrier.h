// -----------------------------------------------------------------------------
// File: sync/barrier.h
// -----------------------------------------------------------------------------
//
// `mp::Barrier` makes a fixed number of parties (threads or processes) wait
// for each other (Python: `multiprocessing.Barrier`). Lives in shared memory
// (standard layout, no pointers).
//
//   mp::Barrier& b = ...;                        // Barrier(4) in shared memory
//   absl::StatusOr<int> index = b.Wait();        // 0..3, in arrival order
//   if (!index.ok()) return index.status();      // kAborted: barrier broken
//
// Python's `action` runs in the last party to arrive; since a callable
// cannot live in shared memory, each party passes it to `Wait(action)` and
// only the last one runs it.
//
// Robust: when a party dies while waiting at the barrier, or while holding
// its internal lock, the barrier breaks and the others return `kAborted`
// instead of hanging (waiters check every 100 ms; deaths are seen through
// the kernel's robust futex list, so a zombie counts as dead). Deaths are
// tracked for up to 64 simultaneous waiters. A party that dies before
// arriving cannot be told from a late one: use a timeout.

#ifndef MP_SYNC_BARRIER_H_
#define MP_SYNC_BARRIER_H_

#include <atomic>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sync/internal/futex.h"
#include "sync/internal/robust_mutex.h"

namespace mp {

class Barrier {
 public:
  // Pass as a timeout to use the barrier's default timeout.
  static constexpr absl::Duration kDefaultTimeout = -absl::InfiniteDuration();
  static constexpr int kTrackedWaiters = 64;

  // `parties` >= 1 (else every Wait() fails with kInvalidArgument);
  // `timeout` is the default for Wait() (Python's `timeout=None`: infinite).
  explicit Barrier(uint32_t parties,
                   absl::Duration timeout = absl::InfiniteDuration());
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  // Barrier::Wait()
  //
  // Waits until `parties()` parties called Wait(); returns this caller's
  // arrival index (0 .. parties-1). The last to arrive runs `action` (when
  // given) before the others are released.
  //
  // Errors: `kAborted` when the barrier is or becomes broken (Python's
  // BrokenBarrierError: Abort(), Reset() while waiting, another party's
  // timeout, a party's death); `kDeadlineExceeded` for the caller whose
  // timeout passed (the barrier breaks for the others); `kInvalidArgument`
  // when parties is 0.
  absl::StatusOr<int> Wait(absl::Duration timeout = kDefaultTimeout);
  absl::StatusOr<int> Wait(absl::FunctionRef<void()> action,
                           absl::Duration timeout = kDefaultTimeout);

  // Barrier::Reset(): back to the empty state; current waiters get kAborted.
  void Reset();
  // Barrier::Abort(): puts the barrier in the broken state.
  void Abort();

  uint32_t parties() const { return parties_; }
  // Barrier::n_waiting(): parties waiting now (0 while broken).
  uint32_t n_waiting() const;
  // Barrier::broken()
  bool broken() const;

 private:
  absl::StatusOr<int> WaitImpl(absl::FunctionRef<void()>* action,
                               absl::Duration timeout);
  void LockInternal();
  // With the lock held: breaks the barrier (waiters of the current
  // generation get kAborted).
  void BreakLocked();
  bool DeadWaiterLocked();

  sync_internal::RobustMutex mu_;
  std::atomic<uint32_t> generation_{0};
  uint32_t parties_;
  uint32_t count_ = 0;
  uint32_t broken_ = 0;
  uint32_t aborted_generation_ = 0;
  uint32_t aborted_valid_ = 0;
  int64_t default_timeout_ns_;  // -1: infinite
  sync_internal::RobustMutex slots_[kTrackedWaiters];
};

}  // namespace mp

#endif  // MP_SYNC_BARRIER_H_
