#include "sync/internal/robust_mutex.h"

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>

#include <cstdio>
#include <cstdlib>

#include "process/spin.h"

namespace mp {
namespace sync_internal {
namespace {

static_assert(RobustMutexLayout::kWord == 0, "");
static_assert(RobustMutexLayout::kPrev == 24, "");
static_assert(RobustMutexLayout::kNext == 32, "");
static_assert(RobustMutexLayout::kNext - RobustMutexLayout::kPrev ==
                  sizeof(uintptr_t),
              "prev must sit right before next, as in glibc's list");
static_assert(RobustMutexLayout::kSleepers == 12, "");
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

// Whether this process releases with a plain store: decided once per process
// (and again in a fork child, see ResetAfterFork), by registering for
// MEMBARRIER_CMD_GLOBAL_EXPEDITED.
enum : int { kMembarrierUnknown, kMembarrierReady, kMembarrierUnavailable };
std::atomic<int> g_membarrier{kMembarrierUnknown};

bool ProcessPlainUnlock() {
  int state = g_membarrier.load(std::memory_order_acquire);
  if (state == kMembarrierUnknown) {
    const long cmds = SysMembarrier(MEMBARRIER_CMD_QUERY, 0);
    const long needed = MEMBARRIER_CMD_GLOBAL_EXPEDITED |
                        MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED;
    const bool ok =
        cmds > 0 && (cmds & needed) == needed &&
        SysMembarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0) == 0;
    int expected = kMembarrierUnknown;
    g_membarrier.compare_exchange_strong(
        expected, ok ? kMembarrierReady : kMembarrierUnavailable,
        std::memory_order_acq_rel);
    state = g_membarrier.load(std::memory_order_acquire);
  }
  return state == kMembarrierReady;
}

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
  s.plain_unlock = ProcessPlainUnlock();
  s.tid = static_cast<uint32_t>(SysGettid());
}

namespace {

// The child re-registers for membarrier at its first lock operation (the
// kernel keeps the registration across fork; registering again is cheap and
// does not depend on that).
void ResetAfterFork() {
  if (g_membarrier.load(std::memory_order_relaxed) == kMembarrierReady) {
    g_membarrier.store(kMembarrierUnknown, std::memory_order_relaxed);
  }
  t_robust_state.tid = 0;
}

[[maybe_unused]] const int g_atfork = pthread_atfork(nullptr, nullptr, ResetAfterFork);

inline ThreadState& State() { return CurrentThreadState(); }

// A sleeper in a process without membarrier looks again this often.
constexpr absl::Duration kFallbackPoll = absl::Milliseconds(5);

// A contended Lock() polls before it sleeps (SpinBackoff, kSpinBudget, and
// kSpinAfterWake after each wake-up; see futex.h), because a sleep is dear
// here: the sleeper's membarrier interrupts every CPU running a registered
// process, and releases that overlap it make wake-up calls.

inline void ClearPending(const ThreadState& s) {
  if (s.robust) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    *s.pending = 0;
  }
}

}  // namespace

bool RobustListSupported() { return State().robust; }

bool PlainUnlockEnabled() { return State().plain_unlock; }

void ForceUnlockFallbackForTesting() {
  g_membarrier.store(kMembarrierUnavailable, std::memory_order_release);
  t_robust_state.tid = 0;  // re-read by the next lock operation
}

RobustMutex::Result RobustMutex::LockSlow(Deadline deadline, bool recursive,
                                          bool try_only) {
  const ThreadState& s = t_robust_state;  // pending set by TryLockFast()
  const uint32_t tid = s.tid;
  uint32_t v = word_.load(std::memory_order_relaxed);
  if ((v & FUTEX_TID_MASK) == tid) {
    ClearPending(s);
    if (!recursive) return Result::kDeadlock;
    if (depth_ == UINT32_MAX - 1) {
      std::fprintf(stderr, "mp::RLock: recursion count overflow\n");
      std::abort();
    }
    ++depth_;
    return Result::kAcquired;
  }
  // Polling for a holder is pointless when only one CPU may run us (the
  // holder cannot run meanwhile): mp::SpinAllowed() (process/spin.h), cached
  // per thread and async-signal-safe, as this may run in a fork child.
  const bool may_spin = !try_only && ::mp::SpinAllowed();
  SpinBackoff spin(may_spin ? kSpinBudget : 0);
  for (;;) {
    v = word_.load(std::memory_order_relaxed);
    if ((v & FUTEX_TID_MASK) == 0) {
      // Keep FUTEX_WAITERS while threads sleep, so that the kernel wakes one
      // if we die holding the lock.
      uint32_t nv = tid | (v & FUTEX_WAITERS);
      if (sleepers_.load(std::memory_order_relaxed) != 0) nv |= FUTEX_WAITERS;
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
    // Poll with exponential backoff: each look at the word takes its cache
    // line away from the holder, so look rarely.
    if (spin.Pause()) continue;
    if (deadline.Expired()) break;
    Sleep(deadline);
    spin.Reset(may_spin ? kSpinAfterWake : 0);
  }
  ClearPending(s);
  return Result::kTimedOut;
}

void RobustMutex::Sleep(Deadline deadline) {
  const ThreadState& s = t_robust_state;
  // Count ourselves first, then order that against releasers: a releaser
  // whose plain store of 0 is not visible to us after the barrier looks at
  // sleepers_ after it, and sees us. Without membarrier (this process
  // releases with an exchange) a full fence orders our side against other
  // fallback releasers; plain-store releasers in other processes cannot be
  // ordered, so we wake up every kFallbackPoll to look again.
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const bool ordered =
      s.plain_unlock &&
      SysMembarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0) == 0;
  uint32_t v = word_.load(std::memory_order_relaxed);
  FutexResult r = FutexResult::kValueChanged;
  for (;;) {
    if ((v & FUTEX_TID_MASK) == 0) break;  // released meanwhile
    if ((v & FUTEX_WAITERS) ||
        word_.compare_exchange_weak(v, v | FUTEX_WAITERS,
                                    std::memory_order_relaxed)) {
      // FUTEX_WAITERS: if the holder dies, the kernel wakes one of us.
      r = FutexWait(&word_, v | FUTEX_WAITERS,
                    ordered ? deadline
                            : Deadline::Earlier(
                                  deadline, Deadline::After(kFallbackPoll)));
      break;
    }
  }
  // Woken by a release: the releaser took our count back (WakeOne()).
  // Otherwise (never slept, timed out) we do. A wake by the kernel for a
  // dead owner is counted as a release's; that leaves the count one too
  // high for good: safe (never too low), but from then on every release of
  // this mutex makes a FUTEX_WAKE call that finds nobody, and every
  // acquisition through LockSlow() sets FUTEX_WAITERS (docs/sync.md).
  if (r != FutexResult::kWoken) {
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void RobustMutex::WakeOne() {
  // Every thread queued on the word counts in sleepers_, so a release that
  // dequeues one takes its count back at once: later releases then make no
  // wake-up calls while the woken thread is on its way.
  if (FutexWake(&word_, 1) > 0) {
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }
}

bool RobustMutex::UnlockSlow() {
  const ThreadState& s = State();
  const uint32_t v = word_.load(std::memory_order_relaxed);
  if ((v & FUTEX_TID_MASK) != s.tid) return false;
  if (depth_ > 0) {
    --depth_;
    return true;
  }
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
  const uint32_t n = depth_ + 1;
  depth_ = 0;
  Unlock();
  return n;
}

RobustMutex::Result RobustMutex::Relock(uint32_t count) {
  Result r = Lock(Deadline::Infinite());
  depth_ = count - 1;
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
