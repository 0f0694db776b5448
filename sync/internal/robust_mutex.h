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
//
// Release is a plain store of 0 to the word (no locked instruction), then a
// look at `sleepers_`, the number of threads that are about to sleep or
// sleep on the word: a FUTEX_WAKE only when it is not zero. The store and
// the look are ordered against a would-be sleeper by an asymmetric barrier:
// the sleeper counts itself, then runs membarrier(MEMBARRIER_CMD_GLOBAL_
// EXPEDITED), which makes every thread of every registered process pass a
// full barrier, and only then re-reads the word and sleeps on it. Either the
// releaser's store preceded its barrier (the sleeper sees the lock free), or
// its look at `sleepers_` follows it (it sees the count and wakes). Every
// process that releases this way must be registered
// (MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, done once per process by the
// first lock operation, again after fork()). Where membarrier is unavailable
// (old kernel, seccomp), the process releases with an atomic exchange
// instead, and its sleepers wake every kFallbackPoll to look again, since a
// plain-store releaser elsewhere cannot be ordered against them. See
// docs/sync.md for the argument.

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
  bool plain_unlock;  // this process is registered for membarrier
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

// Whether this process releases mutexes with a plain store (it registered
// for MEMBARRIER_CMD_GLOBAL_EXPEDITED), rather than the exchange fallback.
bool PlainUnlockEnabled();

// Makes this process use the fallback (exchange release, polling sleeps) from
// now on, as if membarrier were unavailable. For tests: call it in a fresh
// single-threaded fork child before it touches a mutex.
void ForceUnlockFallbackForTesting();

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
    ThreadState& s = CurrentThreadState();
    if (__builtin_expect(
            (word_.load(std::memory_order_relaxed) & kTidMask) != s.tid ||
                depth_ != 0,
            0)) {
      return UnlockSlow();
    }
    if (s.robust) {
      // list_op_pending: usually still ours since Acquired() (see there).
      const uintptr_t self = reinterpret_cast<uintptr_t>(&next_);
      if (*s.pending != self) {
        *s.pending = self;
        std::atomic_signal_fence(std::memory_order_seq_cst);
      }
      // glibc's DEQUEUE_MUTEX. When the previous node is the list head
      // (the usual case), write through the head's address rather than the
      // loaded link, so that the store's address is known early and the
      // next Lock()'s read of the head need not wait for it.
      uintptr_t* const head = s.head_list;
      const uintptr_t next = next_;
      const uintptr_t prev = prev_;
      // The head's own "prev" slot is never read (the head is never
      // dequeued; glibc only ever writes it too), so it is not updated.
      if (next != reinterpret_cast<uintptr_t>(head)) Slot(next)[-1] = prev;
      if (prev == reinterpret_cast<uintptr_t>(head)) {
        *Opaque(head) = next;
      } else {
        *Slot(prev) = next;
      }
    }
    if (__builtin_expect(s.plain_unlock, 1)) {
      // Store, then look: the order the sleeper's barrier relies on (a look
      // before the store could miss a sleeper that came in between).
      word_.store(0, std::memory_order_release);
      std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
      word_.exchange(0, std::memory_order_seq_cst);
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    if (__builtin_expect(sleepers_.load(std::memory_order_relaxed) != 0, 0)) {
      WakeOne();
    }
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

  uint32_t count() const { return depth_ + 1; }

  // The raw word (for tests and the Barrier's death check).
  uint32_t word() const { return word_.load(std::memory_order_relaxed); }
  // Threads counted as sleeping or about to sleep (for tests).
  uint32_t sleepers() const {
    return sleepers_.load(std::memory_order_relaxed);
  }
  // Clears a FUTEX_OWNER_DIED word nobody holds (used by Barrier).
  void ClearOwnerDied();

 private:
  static constexpr uint32_t kTidMask = 0x3fffffff;   // FUTEX_TID_MASK
  static constexpr uint32_t kWaiters = 0x80000000;   // FUTEX_WAITERS

  static uintptr_t* Slot(uintptr_t p) {
    return reinterpret_cast<uintptr_t*>(p & ~uintptr_t{1});
  }
  // `p`, hidden from the optimizer: after `loaded == p` the compiler would
  // otherwise address the store through `loaded`, which the CPU knows late.
  static uintptr_t* Opaque(uintptr_t* p) {
    asm("" : "+r"(p));
    return p;
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
    // depth_ is 0 whenever the mutex is free, except after an owner died
    // holding it recursively: only then does it need resetting.
    if (__builtin_expect(owner_died, 0)) depth_ = 0;
    if (s.robust) {
      const uintptr_t self = reinterpret_cast<uintptr_t>(&next_);
      uintptr_t* const head = s.head_list;
      const uintptr_t first = *head;
      // An empty list: the head's "prev" slot would be written, but it is
      // never read (see Unlock()).
      if (first != reinterpret_cast<uintptr_t>(head)) Slot(first)[-1] = self;
      next_ = first;
      asm volatile("");  // two 8-byte stores, not one 16-byte store: the
                         // 8-byte loads in Unlock() forward from them
      prev_ = reinterpret_cast<uintptr_t>(head);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      *head = self;
      // list_op_pending stays pointing at us (glibc clears it here): the
      // kernel treats a pending entry that is also on the list once, like
      // a listed one, and Unlock() then need not set it again. It is
      // cleared when the mutex is released, before its memory may go away.
    }
    if (__builtin_expect(owner_died, 0)) inconsistent_ = 1;
  }

  Result LockSlow(Deadline deadline, bool recursive, bool try_only);
  // One sleep on the word while another thread holds it: counts this
  // thread in `sleepers_`, orders that against releasers, re-checks, sleeps;
  // returns after any wake-up, with the count undone (see Sleep() for the
  // one exception).
  void Sleep(Deadline deadline);
  void WakeOne();
  bool UnlockSlow();

  // Layout shared with glibc's pthread_mutex_t on 64-bit Linux: the kernel
  // finds the word at `list node - 32`.
  std::atomic<uint32_t> word_{0};  // 0: owner tid | WAITERS | OWNER_DIED
  uint32_t depth_ = 0;             // 4: recursion depth beyond the first
  uint32_t inconsistent_ = 0;      // 8: an owner died, not repaired since
  std::atomic<uint32_t> sleepers_{0};  // 12: threads about to sleep/asleep
  uint32_t reserved_[2] = {0, 0};
  uintptr_t prev_ = 0;             // 24: robust list links (owner's
  uintptr_t next_ = 0;             // 32:  addresses, meaningful only to it)
  friend struct RobustMutexLayout;
};

struct RobustMutexLayout {
  static constexpr size_t kWord = offsetof(RobustMutex, word_);
  static constexpr size_t kNext = offsetof(RobustMutex, next_);
  static constexpr size_t kPrev = offsetof(RobustMutex, prev_);
  static constexpr size_t kSleepers = offsetof(RobustMutex, sleepers_);
};

}  // namespace sync_internal
}  // namespace mp

#endif  // MP_SYNC_INTERNAL_ROBUST_MUTEX_H_
