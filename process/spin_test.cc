#include "process/spin.h"

#include <sched.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"
#include "process/internal/test_util.h"
#include "process/leak_check.h"

namespace {

// The calling thread's affinity mask, and a mask with its first CPU only.
cpu_set_t CurrentMask() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  EXPECT_EQ(::sched_getaffinity(0, sizeof(mask), &mask), 0);
  return mask;
}

cpu_set_t FirstCpuOf(const cpu_set_t& mask) {
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &mask)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  return one;
}

using ::mp::testing::ForkChild;
using ::mp::testing::WaitChild;

TEST(SpinTest, MonotonicNanosDoesNotGoBackwards) {
  int64_t last = mp::MonotonicNanos();
  for (int i = 0; i < 1000; ++i) {
    mp::CpuRelax();
    const int64_t now = mp::MonotonicNanos();
    EXPECT_GE(now, last);
    last = now;
  }
}

TEST(SpinTest, SeveralCpusFollowsTheAffinityMask) {
  const cpu_set_t mine = CurrentMask();
  EXPECT_EQ(mp::MayUseSeveralCpus(), CPU_COUNT(&mine) > 1);
  // A child pinned to one CPU is told not to spin.
  EXPECT_EQ(WaitChild(ForkChild([&mine] {
              const cpu_set_t one = FirstCpuOf(mine);
              if (::sched_setaffinity(0, sizeof(one), &one) != 0) return 2;
              return mp::MayUseSeveralCpus() ? 1 : 0;
            })),
            0);
}

TEST(SpinTest, SpinAllowedAnswersLikeMayUseSeveralCpus) {
  const cpu_set_t mine = CurrentMask();
  const bool several = CPU_COUNT(&mine) > 1;
  EXPECT_EQ(mp::SpinAllowed(), several);
  EXPECT_EQ(mp::SpinAllowed(), several);  // the cached answer
  // Each thread reads its own mask (here the same one).
  bool in_thread = !several;
  std::thread t([&] { in_thread = mp::SpinAllowed(); });
  t.join();
  EXPECT_EQ(in_thread, several);
}

TEST(SpinTest, DisabledForTestingInEveryThread) {
  const bool several = mp::MayUseSeveralCpus();
  EXPECT_EQ(mp::SpinAllowed(), several);
  mp::process_internal::SetSpinDisabledForTesting(true);
  EXPECT_FALSE(mp::SpinAllowed());
  bool in_thread = true;
  std::thread t([&] { in_thread = mp::SpinAllowed(); });
  t.join();
  EXPECT_FALSE(in_thread);
  // Forgetting keeps the switch.
  mp::process_internal::ForgetSpinAllowedForTesting();
  EXPECT_FALSE(mp::SpinAllowed());
  mp::process_internal::SetSpinDisabledForTesting(false);
  EXPECT_EQ(mp::SpinAllowed(), several);
}

TEST(SpinTest, ForgetMakesAChangedMaskVisible) {
  // In a thread of its own, so that the test's main thread keeps its mask.
  std::thread t([] {
    const cpu_set_t mine = CurrentMask();
    const bool several = CPU_COUNT(&mine) > 1;
    EXPECT_EQ(mp::SpinAllowed(), several);
    const cpu_set_t one = FirstCpuOf(mine);
    ASSERT_EQ(::sched_setaffinity(0, sizeof(one), &one), 0);
    // The cached answer stays until it is forgotten.
    EXPECT_EQ(mp::SpinAllowed(), several);
    mp::process_internal::ForgetSpinAllowedForTesting();
    EXPECT_FALSE(mp::SpinAllowed());
    EXPECT_FALSE(mp::SpinAllowed());
    // Restored: visible again after the next forget.
    ASSERT_EQ(::sched_setaffinity(0, sizeof(mine), &mine), 0);
    EXPECT_FALSE(mp::SpinAllowed());
    mp::process_internal::ForgetSpinAllowedForTesting();
    EXPECT_EQ(mp::SpinAllowed(), several);
  });
  t.join();
}

TEST(SpinTest, ForkChildInheritsTheSwitchAndTheAnswer) {
  mp::testing::LeakCheck leaks;
  const cpu_set_t mine = CurrentMask();
  const bool several = CPU_COUNT(&mine) > 1;
  EXPECT_EQ(mp::SpinAllowed(), several);
  // The disable switch holds in a child forked while it is on, and can be
  // turned off there.
  mp::process_internal::SetSpinDisabledForTesting(true);
  EXPECT_EQ(WaitChild(ForkChild([several] {
              if (mp::SpinAllowed()) return 1;
              mp::process_internal::SetSpinDisabledForTesting(false);
              return mp::SpinAllowed() == several ? 0 : 2;
            })),
            0);
  EXPECT_FALSE(mp::SpinAllowed());  // the child's change stayed there
  mp::process_internal::SetSpinDisabledForTesting(false);
  EXPECT_EQ(mp::SpinAllowed(), several);
  // A child inherits the forking thread's cached answer; a child pinned to
  // one CPU sees that after a forget.
  EXPECT_EQ(WaitChild(ForkChild([&mine, several] {
              const cpu_set_t one = FirstCpuOf(mine);
              if (::sched_setaffinity(0, sizeof(one), &one) != 0) return 3;
              if (mp::SpinAllowed() != several) return 1;
              mp::process_internal::ForgetSpinAllowedForTesting();
              return mp::SpinAllowed() ? 2 : 0;
            })),
            0);
  EXPECT_EQ(mp::SpinAllowed(), several);
  EXPECT_TRUE(leaks.Verify().ok());
}

}  // namespace
