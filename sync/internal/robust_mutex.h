// -----------------------------------------------------------------------------
// File: sync/internal/robust_mutex.h
// -----------------------------------------------------------------------------
//
// `RobustMutex`: the owner-tracking, robust futex mutex under `mp::Lock`,
// `mp::RLock` and `mp::Barrier`. It lives in shared memory (standard layout,
// no pointers to other memory, all-zero bytes = unlocked).
//
//   RobustMutex m;                                  // in a MAP_SHARED mapping
//   RobustMutex::Result r = m.Lock(Deadline::Infinite());
//   if (r == RobustMutex::Result::kOwnerDied) { repair(); m.MarkConsistent(); }
//   m.Unlock();
//
// The lock word holds the owner's thread id, FUTEX_WAITERS when threads sleep
// on it, and FUTEX_OWNER_DIED after its owner died: the format of the
// kernel's robust futexes. While locked, the mutex is linked into the owning
// thread's robust list — the one glibc registered with set_robust_list(2) for
// its own robust pthread mutexes. Our node has the same layout as a
// `pthread_mutex_t` (word at offset 0, list links at 24 and 32, so the list's
// `futex_offset` fits both), and we link and unlink it exactly as glibc does,
// so both kinds of entries share the list. When a thread dies holding the
// mutex (SIGKILL included), the kernel walks that list, sets FUTEX_OWNER_DIED
// in the word and wakes a waiter: no polling, no pid reuse race.

#ifndef MP_SYNC_INTERNAL_ROBUST_MUTEX_H_
#define MP_SYNC_INTERNAL_ROBUST_MUTEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "sync/internal/futex.h"

namespace mp {
namespace sync_internal {

// Per-thread state: our tid and the robust list glibc (or we) registered.
// Plain `__thread` data with the initial-exec TLS model, so the fast paths
// below read it with one instruction.
struct ThreadState {
  uint32_t tid;  // 0: not initialized (or reset by fork)
  bool robust;
  uintptr_t* head_list;  // &robust_list_head.list
  uintptr_t* pending;    // &robust_list_head.list_op_pending
};
extern __thread ThreadState t_robust_state
    __attribute__((tls_model("initial-exec")));
void InitThreadState();

inline ThreadState& CurrentThreadState() {
  ThreadState& s = t_robust_state;
  if (__builtin_expect(s.tid == 0, 0)) InitThreadState();
  return s;
}

// The calling thread's kernel thread id (cached; refreshed after fork()).
inline uint32_t CurrentTid() { return CurrentThreadState().tid; }

// Whether owner-death detection through the kernel's robust list works in
// this thread (false on a libc whose list layout we cannot share).
bool RobustListSupported();

class RobustMutex {
 public:
  enum class Result {
    kAcquired,
    kOwnerDied,  // acquired; the previous owner died (or never repaired)
    kTimedOut,
    kDeadlock,   // the calling thread already holds it (and it is not counted)
  };

  constexpr RobustMutex() = default;
  RobustMutex(const RobustMutex&) = delete;
  RobustMutex& operator=(const RobustMutex&) = delete;

  // Lock(): blocks until acquired or `deadline` passes. With `recursive`,
  // a thread that holds it already gets it again (the count goes up).
  Result Lock(Deadline deadline, bool recursive = false) {
    if (__builtin_expect(TryLockFast(), 1)) return AcquiredResult();
    return LockSlow(deadline, recursive, /*try_only=*/false);
  }
  // LockFor(): Lock() with a relative timeout (the clock is read only when
  // the lock is contended). A zero or negative timeout is TryLock().
  Result LockFor(absl::Duration timeout, bool recursive = false) {
    if (__builtin_expect(TryLockFast(), 1)) return AcquiredResult();
    return LockSlow(Deadline::After(timeout), recursive,
                    /*try_only=*/timeout <= absl::ZeroDuration());
  }
  // TryLock(): one attempt, never sleeps.
  Result TryLock(bool recursive = false) {
    if (TryLockFast()) return AcquiredResult();
    return LockSlow(Deadline::Infinite(), recursive, /*try_only=*/true);
  }

  // Unlock(): false (and no change) when the caller does not hold it. For a
  // recursively held mutex only the last Unlock releases.
  bool Unlock() {
#if defined(__x86_64__)
    // Fetch the line for writing: the loads below would otherwise take it
    // shared and the exchange would need a second transfer under contention.
    asm volatile("prefetchw %0" : : "m"(word_));
#endif
    ThreadState& s = CurrentThreadState();
    if (__builtin_expect(
            (word_.load(std::memory_order_relaxed) & kTidMask) != s.tid ||
                count_ != 1,
            0)) {
      return UnlockSlow();
    }
    count_ = 0;
    if (s.robust) {
      *s.pending = reinterpret_cast<uintptr_t>(&next_);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      // glibc's DEQUEUE_MUTEX.
      Slot(next_)[-1] = prev_;
      *Slot(prev_) = next_;
    }
    const uint32_t old = word_.exchange(0, std::memory_order_release);
    if (__builtin_expect(old & kWaiters, 0)) FutexWake(&word_, 1);
    if (s.robust) {
      std::atomic_signal_fence(std::memory_order_seq_cst);
      *s.pending = 0;
    }
    return true;
  }

  bool HeldByCurrentThread() const;
  bool Locked() const;

  // MarkConsistent(): the holder repaired the data; later acquirers are not
  // told about the dead owner any more. False when not held by the caller.
  bool MarkConsistent();
  // Whether an owner died and the data was not marked consistent since.
  bool Inconsistent() const { return inconsistent_ != 0; }

  // For Condition: the recursion count of the holder, released wholly by
  // `UnlockAll()` and restored by `Relock()`.
  uint32_t UnlockAll();
  Result Relock(uint32_t count);

  uint32_t count() const { return count_; }

  // The raw word (for tests and the Barrier's death check).
  uint32_t word() const { return word_.load(std::memory_order_relaxed); }
  // Clears a FUTEX_OWNER_DIED word nobody holds (used by Barrier).
  void ClearOwnerDied();

 private:
  static constexpr uint32_t kTidMask = 0x3fffffff;   // FUTEX_TID_MASK
  static constexpr uint32_t kWaiters = 0x80000000;   // FUTEX_WAITERS

  static uintptr_t* Slot(uintptr_t p) {
    return reinterpret_cast<uintptr_t*>(p & ~uintptr_t{1});
  }

  // One CAS 0 -> tid; on success the mutex is linked into the robust list.
  bool TryLockFast() {
    ThreadState& s = CurrentThreadState();
    if (s.robust) {
      *s.pending = reinterpret_cast<uintptr_t>(&next_);
      std::atomic_signal_fence(std::memory_order_seq_cst);
    }
    uint32_t expected = 0;
    if (__builtin_expect(
            word_.compare_exchange_strong(expected, s.tid,
                                          std::memory_order_acquire,
                                          std::memory_order_relaxed),
            1)) {
      Acquired(false);
      return true;
    }
    return false;
  }
  Result AcquiredResult() const {
    return __builtin_expect(inconsistent_ == 0, 1) ? Result::kAcquired
                                                   : Result::kOwnerDied;
  }

  // Links the mutex into the robust list (glibc's ENQUEUE_MUTEX): every link
  // points at a node's `next` slot, whose `prev` slot is the word before it.
  void Acquired(bool owner_died) {
    const ThreadState& s = t_robust_state;
    count_ = 1;
    if (s.robust) {
      const uintptr_t self = reinterpret_cast<uintptr_t>(&next_);
      const uintptr_t first = *s.head_list;
      Slot(first)[-1] = self;
      next_ = first;
      prev_ = reinterpret_cast<uintptr_t>(s.head_list);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      *s.head_list = self;
      std::atomic_signal_fence(std::memory_order_seq_cst);
      *s.pending = 0;
    }
    if (__builtin_expect(owner_died, 0)) inconsistent_ = 1;
  }

  Result LockSlow(Deadline deadline, bool recursive, bool try_only);
  bool UnlockSlow();

  // Layout shared with glibc's pthread_mutex_t on 64-bit Linux: the kernel
  // finds the word at `list node - 32`.
  std::atomic<uint32_t> word_{0};  // 0: owner tid | WAITERS | OWNER_DIED
  uint32_t count_ = 0;             // 4: recursion depth of the owner
  uint32_t inconsistent_ = 0;      // 8: an owner died, not repaired since
  uint32_t reserved_[3] = {0, 0, 0};
  uintptr_t prev_ = 0;             // 24: robust list links (owner's
  uintptr_t next_ = 0;             // 32:  addresses, meaningful only to it)
  friend struct RobustMutexLayout;
};

struct RobustMutexLayout {
  static constexpr size_t kWord = offsetof(RobustMutex, word_);
  static constexpr size_t kNext = offsetof(RobustMutex, next_);
  static constexpr size_t kPrev = offsetof(RobustMutex, prev_);
};

}  // namespace sync_internal
}  // namespace mp

#endif  // MP_SYNC_INTERNAL_ROBUST_MUTEX_H_
