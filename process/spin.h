// -----------------------------------------------------------------------------
// File: process/spin.h
// -----------------------------------------------------------------------------
//
// The pieces every spin-then-block wait in mp shares (a `Connection`
// receive, a `Queue` put or get, a contended `Lock`, a pool worker waiting
// for its next task): poll for a short, bounded time before sleeping, so that
// two processes running side by side on two cores hand work over without a
// scheduler wake-up; and never spin when this process may run on one CPU
// only, where spinning just keeps the other side from running.
//
//   if (mp::MayUseSeveralCpus()) {
//     const int64_t end = mp::MonotonicNanos() + 50'000;   // 50 us
//     while (!Ready() && mp::MonotonicNanos() < end) mp::CpuRelax();
//   }
//   if (!Ready()) SleepUntilReady();
//
// All three are async-signal-safe (usable in a fork child before exec).

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
// Whether this process may run on more than one CPU now (its affinity mask,
// read with a raw `sched_getaffinity` system call each time; callers on a hot
// path cache the answer per process). False when the mask cannot be read:
// not spinning is always safe.
bool MayUseSeveralCpus();

}  // namespace mp

#endif  // MP_PROCESS_SPIN_H_
