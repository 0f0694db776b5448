#include "sync/internal/robust_mutex.h"

#include <linux/futex.h>
#include <pthread.h>

#include <cstdio>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MP_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define MP_CPU_RELAX() asm volatile("yield" ::: "memory")
#else
#define MP_CPU_RELAX() asm volatile("" ::: "memory")
#endif

namespace mp {
namespace sync_internal {
namespace {

static_assert(RobustMutexLayout::kWord == 0, "");
static_assert(RobustMutexLayout::kPrev == 24, "");
static_assert(RobustMutexLayout::kNext == 32, "");
static_assert(RobustMutexLayout::kNext - RobustMutexLayout::kPrev ==
                  sizeof(uintptr_t),
              "prev must sit right before next, as in glibc's list");
static_assert(sizeof(RobustMutex) == 40, "");

constexpr long kFutexOffset = -static_cast<long>(RobustMutexLayout::kNext);

// struct robust_list_head of the kernel.
struct RobustListHead {
  uintptr_t list;
  long futex_offset;
  uintptr_t list_op_pending;
};

// Our own list head, for threads whose libc registered none. Like glibc's,
// it has a "prev" slot right before it.
struct OwnHead {
  uintptr_t prev;
  RobustListHead head;
};

struct ThreadState {
  uint32_t tid;  // 0: not initialized (or reset by fork)
  bool robust;
  uintptr_t* head_list;
  uintptr_t* pending;
};

// Trivially constructible: plain TLS, no init guard on the fast path.
thread_local ThreadState t_state;
thread_local OwnHead t_own;

void InitThreadState() {
  ThreadState& s = t_state;
  s.robust = false;
  s.head_list = nullptr;
  s.pending = nullptr;
  void* head = nullptr;
  size_t len = 0;
  if (SysGetRobustList(&head, &len) == 0 && head != nullptr) {
    auto* h = static_cast<RobustListHead*>(head);
    if (len == sizeof(RobustListHead) && h->futex_offset == kFutexOffset) {
      s.robust = true;
      s.head_list = &h->list;
      s.pending = &h->list_op_pending;
    }
  } else if (head == nullptr) {
    t_own.prev = 0;
    t_own.head.list = reinterpret_cast<uintptr_t>(&t_own.head.list);
    t_own.head.futex_offset = kFutexOffset;
    t_own.head.list_op_pending = 0;
    if (SysSetRobustList(&t_own.head, sizeof(RobustListHead)) == 0) {
      s.robust = true;
      s.head_list = &t_own.head.list;
      s.pending = &t_own.head.list_op_pending;
    }
  }
  s.tid = static_cast<uint32_t>(SysGettid());
}

void ResetAfterFork() { t_state.tid = 0; }

[[maybe_unused]] const int g_atfork = pthread_atfork(nullptr, nullptr, ResetAfterFork);

inline ThreadState& State() {
  ThreadState& s = t_state;
  if (__builtin_expect(s.tid == 0, 0)) InitThreadState();
  return s;
}

inline void SetPending(const ThreadState& s, const void* node_next) {
  if (s.robust) {
    *s.pending = reinterpret_cast<uintptr_t>(node_next);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
}

inline void ClearPending(const ThreadState& s) {
  if (s.robust) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    *s.pending = 0;
  }
}

inline uintptr_t* Slot(uintptr_t p) {
  return reinterpret_cast<uintptr_t*>(p & ~uintptr_t{1});
}

}  // namespace

uint32_t CurrentTid() { return State().tid; }

bool RobustListSupported() { return State().robust; }

void RobustMutex::Acquired(bool owner_died) {
  const ThreadState& s = t_state;
  count_ = 1;
  if (s.robust) {
    // glibc's ENQUEUE_MUTEX: link at the head; every link points at a
    // node's `next` slot, whose `prev` slot is the word before it.
    const uintptr_t self = reinterpret_cast<uintptr_t>(&next_);
    const uintptr_t first = *s.head_list;
    Slot(first)[-1] = self;
    next_ = first;
    prev_ = reinterpret_cast<uintptr_t>(s.head_list);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    *s.head_list = self;
  }
  ClearPending(s);
  if (owner_died) inconsistent_ = 1;
}

RobustMutex::Result RobustMutex::Lock(Deadline deadline, bool recursive) {
  const ThreadState& s = State();
  SetPending(s, &next_);
  uint32_t expected = 0;
  if (__builtin_expect(word_.compare_exchange_strong(
                           expected, s.tid, std::memory_order_acquire,
                           std::memory_order_relaxed),
                       1)) {
    Acquired(false);
    return inconsistent_ ? Result::kOwnerDied : Result::kAcquired;
  }
  return LockSlow(deadline, recursive, /*try_only=*/false);
}

RobustMutex::Result RobustMutex::LockFor(absl::Duration timeout,
                                         bool recursive) {
  const ThreadState& s = State();
  SetPending(s, &next_);
  uint32_t expected = 0;
  if (__builtin_expect(word_.compare_exchange_strong(
                           expected, s.tid, std::memory_order_acquire,
                           std::memory_order_relaxed),
                       1)) {
    Acquired(false);
    return inconsistent_ ? Result::kOwnerDied : Result::kAcquired;
  }
  return LockSlow(Deadline::After(timeout), recursive,
                  /*try_only=*/timeout <= absl::ZeroDuration());
}

RobustMutex::Result RobustMutex::TryLock(bool recursive) {
  const ThreadState& s = State();
  SetPending(s, &next_);
  uint32_t expected = 0;
  if (word_.compare_exchange_strong(expected, s.tid, std::memory_order_acquire,
                                    std::memory_order_relaxed)) {
    Acquired(false);
    return inconsistent_ ? Result::kOwnerDied : Result::kAcquired;
  }
  return LockSlow(Deadline::After(absl::ZeroDuration()), recursive,
                  /*try_only=*/true);
}

RobustMutex::Result RobustMutex::LockSlow(Deadline deadline, bool recursive,
                                          bool try_only) {
  const ThreadState& s = t_state;
  const uint32_t tid = s.tid;
  uint32_t v = word_.load(std::memory_order_relaxed);
  if ((v & FUTEX_TID_MASK) == tid) {
    ClearPending(s);
    if (!recursive) return Result::kDeadlock;
    if (count_ == UINT32_MAX) {
      std::fprintf(stderr, "mp::RLock: recursion count overflow\n");
      std::abort();
    }
    ++count_;
    return Result::kAcquired;
  }
  uint32_t extra = 0;  // once we slept, others may sleep too: keep WAITERS
  int spins = try_only ? 0 : 100;
  for (;;) {
    v = word_.load(std::memory_order_relaxed);
    if ((v & FUTEX_TID_MASK) == 0) {
      const uint32_t nv = tid | (v & FUTEX_WAITERS) | extra;
      if (word_.compare_exchange_weak(v, nv, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
        const bool died = (v & FUTEX_OWNER_DIED) != 0;
        Acquired(died);
        return (died || inconsistent_) ? Result::kOwnerDied
                                       : Result::kAcquired;
      }
      continue;
    }
    if (try_only) break;
    if (spins > 0 && !(v & FUTEX_WAITERS)) {
      --spins;
      MP_CPU_RELAX();
      continue;
    }
    if (deadline.Expired()) break;
    if (!(v & FUTEX_WAITERS)) {
      if (!word_.compare_exchange_weak(v, v | FUTEX_WAITERS,
                                       std::memory_order_relaxed)) {
        continue;
      }
      v |= FUTEX_WAITERS;
    }
    extra = FUTEX_WAITERS;
    FutexWait(&word_, v, deadline);  // then re-check, timeout included
  }
  ClearPending(s);
  return Result::kTimedOut;
}

bool RobustMutex::Unlock() {
  const ThreadState& s = State();
  const uint32_t v = word_.load(std::memory_order_relaxed);
  if ((v & FUTEX_TID_MASK) != s.tid) return false;
  if (count_ > 1) {
    --count_;
    return true;
  }
  count_ = 0;
  SetPending(s, &next_);
  if (s.robust) {
    // glibc's DEQUEUE_MUTEX.
    Slot(next_)[-1] = prev_;
    *Slot(prev_) = next_;
    prev_ = 0;
    next_ = 0;
  }
  const uint32_t old = word_.exchange(0, std::memory_order_release);
  if (old & FUTEX_WAITERS) FutexWake(&word_, 1);
  ClearPending(s);
  return true;
}

bool RobustMutex::HeldByCurrentThread() const {
  return (word_.load(std::memory_order_relaxed) & FUTEX_TID_MASK) ==
         State().tid;
}

bool RobustMutex::Locked() const {
  return (word_.load(std::memory_order_relaxed) & FUTEX_TID_MASK) != 0;
}

bool RobustMutex::MarkConsistent() {
  if (!HeldByCurrentThread()) return false;
  inconsistent_ = 0;
  return true;
}

uint32_t RobustMutex::UnlockAll() {
  const uint32_t n = count_;
  count_ = 1;
  Unlock();
  return n;
}

RobustMutex::Result RobustMutex::Relock(uint32_t count) {
  Result r = Lock(Deadline::Infinite());
  count_ = count;
  return r;
}

void RobustMutex::ClearOwnerDied() {
  uint32_t v = word_.load(std::memory_order_relaxed);
  while ((v & FUTEX_TID_MASK) == 0 && (v & FUTEX_OWNER_DIED)) {
    if (word_.compare_exchange_weak(v, v & FUTEX_WAITERS)) break;
  }
}

}  // namespace sync_internal
}  // namespace mp
