#include "process/spin.h"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace {

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
  cpu_set_t mine;
  ASSERT_EQ(::sched_getaffinity(0, sizeof(mine), &mine), 0);
  EXPECT_EQ(mp::MayUseSeveralCpus(), CPU_COUNT(&mine) > 1);
  // A child pinned to one CPU is told not to spin.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &mine)) {
        CPU_SET(cpu, &one);
        break;
      }
    }
    if (::sched_setaffinity(0, sizeof(one), &one) != 0) ::_exit(2);
    ::_exit(mp::MayUseSeveralCpus() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
