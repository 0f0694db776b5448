// -----------------------------------------------------------------------------
// File: sync/internal/futex.h
// -----------------------------------------------------------------------------
//
// The futex layer that every process-shared primitive of mp is built on
// (`mp::Lock`, `mp::Semaphore`, the cross-process `Queue`, ...). Internal:
// visible to mp's packages, not to users.
//
//   std::atomic<uint32_t>* word = ...;            // in a MAP_SHARED mapping
//   sync_internal::Deadline d = sync_internal::Deadline::After(absl::Seconds(1));
//   while (word->load() == 0) {
//     if (sync_internal::FutexWait(word, 0, d) == FutexResult::kTimedOut) break;
//   }
//   ...
//   word->store(1);
//   sync_internal::FutexWake(word, 1);
//
// Futexes here are always process-shared (no FUTEX_PRIVATE_FLAG), so the word
// may live in memory mapped by several processes at different addresses.
// Deadlines are absolute CLOCK_MONOTONIC times: a wait interrupted by a signal
// is restarted with the same deadline, so signals neither shorten nor extend
// it, and changes of the wall clock do not affect it.

#ifndef MP_SYNC_INTERNAL_FUTEX_H_
#define MP_SYNC_INTERNAL_FUTEX_H_

#include <time.h>

#include <atomic>
#include <cstdint>
#include <limits>

#include "absl/time/time.h"
#include "process/spin.h"

namespace mp {
namespace sync_internal {

// An absolute point in time on CLOCK_MONOTONIC, or "never".
class Deadline {
 public:
  // Deadline::Infinite(): a deadline that never passes.
  static Deadline Infinite() { return Deadline(kInfinite); }

  // Deadline::After()
  //
  // Now plus `timeout`. `absl::InfiniteDuration()` gives `Infinite()`; a zero
  // or negative timeout gives a deadline that has already passed.
  static Deadline After(absl::Duration timeout);

  // Deadline::Earlier(): the earlier of two deadlines.
  static Deadline Earlier(Deadline a, Deadline b) {
    return a.ns_ < b.ns_ ? a : b;
  }

  bool infinite() const { return ns_ == kInfinite; }

  // Deadline::Expired(): whether the deadline has passed (never if infinite).
  bool Expired() const;

  // Deadline::Remaining(): time left (zero once passed, infinite if infinite).
  absl::Duration Remaining() const;

  // Nanoseconds since the CLOCK_MONOTONIC epoch.
  int64_t ns() const { return ns_; }
  timespec ToTimespec() const;

  static int64_t NowNs();

 private:
  static constexpr int64_t kInfinite = std::numeric_limits<int64_t>::max();
  explicit Deadline(int64_t ns) : ns_(ns) {}
  int64_t ns_;
};

enum class FutexResult {
  kWoken,         // woken by FutexWake (or spuriously): re-check the word
  kValueChanged,  // *word != expected when the wait started
  kTimedOut,      // the deadline passed
};

// FutexWait()
//
// Sleeps while `*word == expected`, until woken or `deadline` passes. EINTR
// restarts the wait with the same absolute deadline. Like every futex wait it
// may return kWoken spuriously: callers loop on their condition. An invalid
// address aborts (a broken invariant, not a runtime error).
FutexResult FutexWait(std::atomic<uint32_t>* word, uint32_t expected,
                      Deadline deadline);

// FutexWake()
//
// Wakes at most `count` waiters of `word` (`kWakeAll` for all). Returns the
// number woken.
constexpr int kWakeAll = std::numeric_limits<int>::max();
int FutexWake(std::atomic<uint32_t>* word, int count);

// CpuRelax(): the spin-wait hint (process/spin.h).
using ::mp::CpuRelax;

// --- Polling before a sleep ---------------------------------------------------
//
// A futex sleep and wake-up cost two system calls and a context switch on
// each side; when the word changes within microseconds, polling it first is
// cheaper. Lock, Event and Semaphore poll with exponential backoff (1, 2, 4
// ... kMaxSpinBackoff pauses between looks, since each look takes the word's
// cache line away from the writer) for a budget counted in pauses, and never
// when the process may run on only one CPU (the writer cannot run meanwhile).

// Budgets in pauses. One pause is ~10-100 cycles depending on the CPU (~28
// ns on the development machine): ~50 us before the first sleep, ~8 us after
// each wake-up.
constexpr int kSpinBudget = 1800;
constexpr int kSpinAfterWake = 300;
constexpr int kMaxSpinBackoff = 32;

// SpinBackoff: the backoff schedule of one polling phase.
class SpinBackoff {
 public:
  explicit SpinBackoff(int budget) : left_(budget) {}
  // Pause(): pauses before the next look; false (no pause) once the budget
  // is spent.
  bool Pause() {
    if (left_ <= 0) return false;
    for (int i = 0; i < backoff_; ++i) CpuRelax();
    left_ -= backoff_;
    if (backoff_ < kMaxSpinBackoff) backoff_ *= 2;
    return true;
  }
  // Reset(): a new phase with `budget`.
  void Reset(int budget) {
    left_ = budget;
    backoff_ = 1;
  }

 private:
  int left_;
  int backoff_ = 1;
};

// SpinUntil()
//
// Polls `ready()` with backoff for `budget` pauses (nothing when
// !mp::SpinAllowed(), process/spin.h), stopping at `deadline`; true as soon
// as `ready()` is.
// Callers then sleep on their futex as before: the poll only saves the
// sleep when the word changes soon.
template <typename Ready>
bool SpinUntil(Ready ready, Deadline deadline, int budget = kSpinBudget) {
  if (!::mp::SpinAllowed() || deadline.Expired()) return false;
  SpinBackoff backoff(budget);
  while (backoff.Pause()) {
    if (ready()) return true;
    if (deadline.Expired()) return false;
  }
  return false;
}

// The raw system calls, each in one place. They return the syscall's result,
// or -errno on failure.

// SysFutex(): futex(2).
long SysFutex(void* uaddr, int op, uint32_t val, const timespec* timeout,
              void* uaddr2, uint32_t val3);
// SysGettid(): gettid(2).
int SysGettid();
// SysGetRobustList() / SysSetRobustList(): get_robust_list(2) for the calling
// thread, set_robust_list(2).
long SysGetRobustList(void** head, size_t* len);
long SysSetRobustList(void* head, size_t len);
// SysMembarrier(): membarrier(2).
long SysMembarrier(int cmd, unsigned flags);

}  // namespace sync_internal
}  // namespace mp

#endif  // MP_SYNC_INTERNAL_FUTEX_H_
