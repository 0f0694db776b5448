#include "sync/internal/futex.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "process/spin.h"

namespace mp {
namespace sync_internal {
namespace {

TEST(DeadlineTest, InfiniteAndPast) {
  EXPECT_TRUE(Deadline::Infinite().infinite());
  EXPECT_FALSE(Deadline::Infinite().Expired());
  EXPECT_TRUE(Deadline::After(absl::InfiniteDuration()).infinite());
  EXPECT_TRUE(Deadline::After(absl::ZeroDuration()).Expired());
  EXPECT_TRUE(Deadline::After(-absl::Seconds(1)).Expired());
  EXPECT_EQ(Deadline::After(-absl::Seconds(1)).Remaining(), absl::ZeroDuration());
  EXPECT_GT(Deadline::After(absl::Seconds(10)).Remaining(), absl::Seconds(9));
  EXPECT_TRUE(Deadline::After(absl::Hours(1e9)).infinite());
}

TEST(SpinTest, BackoffSpendsItsBudgetThenStops) {
  SpinBackoff b(100);
  int looks = 0;
  while (b.Pause()) ++looks;
  // Pauses 1, 2, 4, 8, 16, 32, 32 (= 95), then 32 more: 8 looks.
  EXPECT_EQ(looks, 8);
  EXPECT_FALSE(b.Pause());
  b.Reset(1);
  EXPECT_TRUE(b.Pause());
  EXPECT_FALSE(b.Pause());
  SpinBackoff none(0);
  EXPECT_FALSE(none.Pause());
}

TEST(SpinTest, SpinUntilSeesReadyAndGivesUp) {
  if (!::mp::MayUseSeveralCpus()) GTEST_SKIP() << "one CPU: no polling";
  int calls = 0;
  EXPECT_TRUE(SpinUntil([&] { return ++calls == 3; }, Deadline::Infinite()));
  EXPECT_EQ(calls, 3);
  calls = 0;
  EXPECT_FALSE(SpinUntil([&] { return ++calls, false; }, Deadline::Infinite()));
  EXPECT_GT(calls, 0);  // the budget ran out
  // An expired deadline: no looks at all.
  calls = 0;
  EXPECT_FALSE(SpinUntil([&] { return ++calls, true; },
                         Deadline::After(absl::ZeroDuration())));
  EXPECT_EQ(calls, 0);
  // Disabled for testing: no looks either.
  ::mp::process_internal::SetSpinDisabledForTesting(true);
  EXPECT_FALSE(::mp::SpinAllowed());
  EXPECT_FALSE(SpinUntil([&] { return ++calls, true; }, Deadline::Infinite()));
  EXPECT_EQ(calls, 0);
  ::mp::process_internal::SetSpinDisabledForTesting(false);
  EXPECT_TRUE(::mp::SpinAllowed());
}

TEST(SpinTest, SpinUntilStopsAtTheDeadline) {
  if (!::mp::MayUseSeveralCpus()) GTEST_SKIP() << "one CPU: no polling";
  // A budget far beyond the deadline: polling stops at the deadline, not
  // when the budget runs out.
  const Deadline d = Deadline::After(absl::Microseconds(20));
  EXPECT_FALSE(SpinUntil([] { return false; }, d, 1 << 30));
  EXPECT_TRUE(d.Expired());
}

TEST(FutexTest, ValueChangedReturnsImmediately) {
  std::atomic<uint32_t> word{1};
  EXPECT_EQ(FutexWait(&word, 0, Deadline::Infinite()),
            FutexResult::kValueChanged);
}

TEST(FutexTest, TimesOutAtDeadline) {
  std::atomic<uint32_t> word{0};
  const absl::Time start = absl::Now();
  EXPECT_EQ(FutexWait(&word, 0, Deadline::After(absl::Milliseconds(50))),
            FutexResult::kTimedOut);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
}

TEST(FutexTest, WakeWakesWaiter) {
  std::atomic<uint32_t> word{0};
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(20));
    word.store(1);
    FutexWake(&word, 1);
  });
  while (word.load() == 0) {
    FutexResult r = FutexWait(&word, 0, Deadline::After(absl::Seconds(10)));
    ASSERT_NE(r, FutexResult::kTimedOut);
  }
  t.join();
  EXPECT_EQ(FutexWake(&word, kWakeAll), 0);
}

void Handler(int) {}

TEST(FutexTest, SignalsDoNotShortenTheWait) {
  struct sigaction sa = {};
  sa.sa_handler = Handler;  // no SA_RESTART: futex returns EINTR
  struct sigaction old;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  std::atomic<uint32_t> word{0};
  std::atomic<bool> done{false};
  const pthread_t self = pthread_self();
  std::thread pester([&] {
    while (!done.load()) {
      pthread_kill(self, SIGUSR1);
      absl::SleepFor(absl::Milliseconds(5));
    }
  });
  const absl::Time start = absl::Now();
  EXPECT_EQ(FutexWait(&word, 0, Deadline::After(absl::Milliseconds(200))),
            FutexResult::kTimedOut);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  done.store(true);
  pester.join();
  sigaction(SIGUSR1, &old, nullptr);
}

TEST(FutexTest, WakesAcrossProcessesInSharedMemory) {
  mp::testing::LeakCheck leaks;
  void* mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* word = new (mem) std::atomic<uint32_t>(0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    while (word->load() == 0) {
      if (FutexWait(word, 0, Deadline::After(absl::Seconds(10))) ==
          FutexResult::kTimedOut) {
        _exit(1);
      }
    }
    word->store(2);
    FutexWake(word, 1);
    _exit(0);
  }
  word->store(1);
  FutexWake(word, 1);
  while (word->load() != 2) {
    ASSERT_NE(FutexWait(word, 1, Deadline::After(absl::Seconds(10))),
              FutexResult::kTimedOut);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  munmap(mem, 4096);
  EXPECT_TRUE(leaks.Verify().ok());
}

}  // namespace
}  // namespace sync_internal
}  // namespace mp
