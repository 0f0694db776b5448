// -----------------------------------------------------------------------------
// File: process/spin.h
// -----------------------------------------------------------------------------
//
// The pieces every spin-then-block wait in mp shares (a `Connection`
// receive, a `Queue` put or get, a contended `Lock`, a pool worker waiting
// for its next task): poll for a short, bounded time before sleeping, so that
// two processes running side by side on two cores hand work over without a
// scheduler wake-up; and never spin when this thread may run on one CPU
// only, where spinning just keeps the other side from running.
//
//   if (mp::SpinAllowed()) {
//     const int64_t end = mp::MonotonicNanos() + 50'000;   // 50 us
//     while (!Ready() && mp::MonotonicNanos() < end) mp::CpuRelax();
//   }
//   if (!Ready()) SleepUntilReady();
//
// `SpinAllowed()` is the one answer hot paths ask: cheap (no system call
// after a thread's first call, no lock) and switched off for the whole
// process (and its fork children) by tests that need the sleeping path.
// All of these are async-signal-safe (usable in a fork child before exec).

#ifndef MP_PROCESS_SPIN_H_
#define MP_PROCESS_SPIN_H_

#include <time.h>

#include <cstdint>

namespace mp {

// CpuRelax()
//
// The spin-wait hint (`pause` on x86, `yield` on Arm); also a compiler
// barrier.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  asm volatile("" ::: "memory");
#endif
}

// MonotonicNanos()
//
// CLOCK_MONOTONIC in nanoseconds (vDSO: no system call).
inline int64_t MonotonicNanos() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// MayUseSeveralCpus()
//
// Whether the calling thread may run on more than one CPU now (its affinity
// mask, read with a raw `sched_getaffinity` system call each time: for code
// that runs once; hot paths ask `SpinAllowed()`). False when the mask cannot
// be read: not spinning is always safe.
bool MayUseSeveralCpus();

// SpinAllowed()
//
// Whether a wait may spin before it sleeps: `MayUseSeveralCpus()`, read once
// per thread and cached (affinity is per thread, and a fork child inherits
// the forking thread's mask and so its answer), and false while spinning is
// disabled for testing (below). A thread whose mask changes after its first
// call keeps its first answer. One relaxed atomic load and one thread-local
// read after the first call.
bool SpinAllowed();

namespace process_internal {

// SetSpinDisabledForTesting()
//
// Makes `SpinAllowed()` false (or, with `false`, its cached answer again) in
// every thread of this process from now on, and in fork children started
// afterwards. For tests that must take the sleeping path.
void SetSpinDisabledForTesting(bool disabled);

// ForgetSpinAllowedForTesting()
//
// Makes each thread's next `SpinAllowed()` read its affinity mask again (for
// tests that change the mask with sched_setaffinity). Keeps the disable
// switch as it is.
void ForgetSpinAllowedForTesting();

}  // namespace process_internal

}  // namespace mp

#endif  // MP_PROCESS_SPIN_H_
