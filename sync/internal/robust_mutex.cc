#include "sync/internal/robust_mutex.h"

#include <linux/futex.h>
#include <pthread.h>

#include <cstdio>
#include <cstdlib>


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

thread_local OwnHead t_own;

}  // namespace

__thread ThreadState t_robust_state;

void InitThreadState() {
  ThreadState& s = t_robust_state;
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

namespace {

void ResetAfterFork() { t_robust_state.tid = 0; }

[[maybe_unused]] const int g_atfork = pthread_atfork(nullptr, nullptr, ResetAfterFork);

inline ThreadState& State() { return CurrentThreadState(); }

inline void ClearPending(const ThreadState& s) {
  if (s.robust) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    *s.pending = 0;
  }
}

}  // namespace

bool RobustListSupported() { return State().robust; }

RobustMutex::Result RobustMutex::LockSlow(Deadline deadline, bool recursive,
                                          bool try_only) {
  const ThreadState& s = t_robust_state;  // pending set by TryLockFast()
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
  // Optional polling before sleeping (see kSpinIterations).
  int spins = try_only ? 0 : kSpinIterations;
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
      CpuRelax();
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

bool RobustMutex::UnlockSlow() {
  const ThreadState& s = State();
  const uint32_t v = word_.load(std::memory_order_relaxed);
  if ((v & FUTEX_TID_MASK) != s.tid) return false;
  if (count_ > 1) {
    --count_;
    return true;
  }
  count_ = 1;  // a count of 0 cannot happen while held; be lenient
  return Unlock();
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
