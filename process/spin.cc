#include "process/spin.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace mp {

namespace {

// Bit 0: spinning disabled for testing. The bits above: the generation of
// the cached answers, advanced by ForgetSpinAllowedForTesting(); it starts
// at 1 (stored as 2) so that a thread's 0 below means "never read". 64 bits:
// it never wraps.
constexpr uint64_t kDisabled = 1;
constexpr uint64_t kGeneration = 2;
std::atomic<uint64_t> g_spin_state{kGeneration};
static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "SpinAllowed() must stay lock-free (async-signal-safe)");

// The calling thread's answer and the g_spin_state it was read under (0:
// not read yet). Initial-exec TLS: one instruction to read, and no
// allocation on first use (async-signal-safe).
__thread uint64_t t_spin_generation
    __attribute__((tls_model("initial-exec"))) = 0;
__thread bool t_spin_allowed __attribute__((tls_model("initial-exec"))) = false;

}  // namespace

bool MayUseSeveralCpus() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  // The raw system call returns the mask's size in bytes (> 0) on success.
  return ::syscall(SYS_sched_getaffinity, 0, sizeof(cpus), &cpus) > 0 &&
         CPU_COUNT(&cpus) > 1;
}

bool SpinAllowed() {
  const uint64_t state = g_spin_state.load(std::memory_order_relaxed);
  if (state & kDisabled) return false;
  if (__builtin_expect(t_spin_generation != state, 0)) {
    t_spin_allowed = MayUseSeveralCpus();
    t_spin_generation = state;
  }
  return t_spin_allowed;
}

namespace process_internal {

void SetSpinDisabledForTesting(bool disabled) {
  if (disabled) {
    g_spin_state.fetch_or(kDisabled, std::memory_order_relaxed);
  } else {
    g_spin_state.fetch_and(~kDisabled, std::memory_order_relaxed);
  }
}

void ForgetSpinAllowedForTesting() {
  g_spin_state.fetch_add(kGeneration, std::memory_order_relaxed);
}

}  // namespace process_internal

}  // namespace mp
