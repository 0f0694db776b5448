#include "sync/internal/robust_mutex.h"

#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "sync/internal/test_util.h"

namespace mp {
namespace sync_internal {
namespace {

using sync_testing::Eventually;
using sync_testing::ForkChild;
using sync_testing::SharedMapping;
using sync_testing::WaitChild;

bool MembarrierAvailable() {
  const long cmds = SysMembarrier(MEMBARRIER_CMD_QUERY, 0);
  return cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
         (cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
}

// Reaps `pid` if it exits before `end`; otherwise kills it, reaps it and
// returns -1000 (the "does not hang" bound of the tests below, well inside
// the test's own timeout).
int WaitChildUntil(pid_t pid, absl::Time end) {
  int status = 0;
  while (absl::Now() < end) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  WaitChild(pid);
  return -1000;
}

TEST(RobustMutexTest, RobustListIsUsable) {
  EXPECT_TRUE(RobustListSupported());
  EXPECT_EQ(CurrentTid(), static_cast<uint32_t>(SysGettid()));
}

TEST(RobustMutexTest, LockWordIsTheOwnerTid) {
  RobustMutex m;
  ASSERT_EQ(m.Lock(Deadline::Infinite()), RobustMutex::Result::kAcquired);
  EXPECT_EQ(m.word() & FUTEX_TID_MASK, CurrentTid());
  EXPECT_TRUE(m.Unlock());
  EXPECT_EQ(m.word(), 0u);
}

TEST(RobustMutexTest, TidIsRefreshedInForkChild) {
  SharedMapping<std::atomic<uint32_t>> child_tid(0);
  const uint32_t parent = CurrentTid();
  pid_t pid = ForkChild([&] {
    child_tid->store(CurrentTid());
    return 0;
  });
  EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_EQ(child_tid->load(), static_cast<uint32_t>(pid));
  EXPECT_NE(child_tid->load(), parent);
}

struct Mixed {
  RobustMutex a;
  pthread_mutex_t p;
  RobustMutex b;
  std::atomic<int> stage{0};
};

// Our entries share glibc's per-thread robust list with robust pthread
// mutexes: interleave both, in every lock/unlock order, then die holding all
// of them. The kernel must flag every one.
TEST(RobustMutexTest, SharesTheListWithRobustPthreadMutexes) {
  testing::LeakCheck leaks;
  SharedMapping<Mixed> s;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  ASSERT_EQ(pthread_mutex_init(&s->p, &attr), 0);
  pthread_mutexattr_destroy(&attr);

  // In this process: every interleaving of enqueue/dequeue leaves the list
  // consistent (else later glibc or kernel walks would crash or miss).
  for (int order = 0; order < 4; ++order) {
    ASSERT_EQ(s->a.Lock(Deadline::Infinite()), RobustMutex::Result::kAcquired);
    ASSERT_EQ(pthread_mutex_lock(&s->p), 0);
    ASSERT_EQ(s->b.Lock(Deadline::Infinite()), RobustMutex::Result::kAcquired);
    if (order & 1) {
      ASSERT_EQ(pthread_mutex_unlock(&s->p), 0);
      ASSERT_TRUE(s->a.Unlock());
      ASSERT_TRUE(s->b.Unlock());
    } else {
      ASSERT_TRUE(s->a.Unlock());
      ASSERT_TRUE(s->b.Unlock());
      ASSERT_EQ(pthread_mutex_unlock(&s->p), 0);
    }
  }
  pid_t pid = ForkChild([&] {
    if (s->b.Lock(Deadline::Infinite()) != RobustMutex::Result::kAcquired) return 1;
    if (pthread_mutex_lock(&s->p) != 0) return 2;
    if (s->a.Lock(Deadline::Infinite()) != RobustMutex::Result::kAcquired) return 3;
    // Dequeue the middle one and re-add it, then die holding all three.
    if (pthread_mutex_unlock(&s->p) != 0) return 4;
    if (pthread_mutex_lock(&s->p) != 0) return 5;
    s->stage.store(1);
    for (;;) pause();
  });
  ASSERT_TRUE(Eventually([&] { return s->stage.load() == 1; }));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(WaitChild(pid), -SIGKILL);
  EXPECT_EQ(s->a.Lock(Deadline::After(absl::Seconds(10))),
            RobustMutex::Result::kOwnerDied);
  EXPECT_EQ(s->b.Lock(Deadline::After(absl::Seconds(10))),
            RobustMutex::Result::kOwnerDied);
  EXPECT_EQ(pthread_mutex_lock(&s->p), EOWNERDEAD);
  EXPECT_EQ(pthread_mutex_consistent(&s->p), 0);
  EXPECT_EQ(pthread_mutex_unlock(&s->p), 0);
  EXPECT_TRUE(s->a.MarkConsistent());
  EXPECT_TRUE(s->a.Unlock());
  EXPECT_TRUE(s->b.Unlock());
  pthread_mutex_destroy(&s->p);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(RobustMutexTest, ReleaseIsAPlainStoreWhereMembarrierWorks) {
  if (!MembarrierAvailable()) GTEST_SKIP() << "membarrier unavailable";
  EXPECT_TRUE(PlainUnlockEnabled());
  // A fork child registers again at its first lock operation.
  SharedMapping<RobustMutex> m;
  pid_t pid = ForkChild([&] {
    if (m->Lock(Deadline::Infinite()) != RobustMutex::Result::kAcquired) {
      return 1;
    }
    if (!PlainUnlockEnabled()) return 2;
    return m->Unlock() ? 0 : 3;
  });
  EXPECT_EQ(WaitChild(pid), 0);
}

TEST(RobustMutexTest, FallbackReleaseCanBeForced) {
  SharedMapping<RobustMutex> m;
  pid_t pid = ForkChild([&] {
    ForceUnlockFallbackForTesting();
    if (PlainUnlockEnabled()) return 1;
    if (m->Lock(Deadline::Infinite()) != RobustMutex::Result::kAcquired) {
      return 2;
    }
    if (!m->Unlock()) return 3;
    return m->word() == 0 ? 0 : 4;
  });
  EXPECT_EQ(WaitChild(pid), 0);
}

// The wake protocol under load: processes increment a counter under the
// mutex, and now and then hold it long enough (2 ms) that the others stop
// spinning and sleep. No increment may be lost, nobody may hang, and every
// sleeper's count must be gone at the end. `fallback` picks, per process,
// whether it releases with the exchange fallback (mixed: some of each).
struct Hammered {
  RobustMutex m;
  int64_t counter = 0;
};

void Hammer(const std::vector<bool>& fallback, bool one_cpu = false) {
  testing::LeakCheck leaks;
  SharedMapping<Hammered> h;
  constexpr int kIters = 400, kHoldEvery = 40;
  std::vector<pid_t> pids;
  for (bool fb : fallback) {
    pids.push_back(ForkChild([&h, fb, one_cpu] {
      if (fb) ForceUnlockFallbackForTesting();
      if (one_cpu) {
        // All on one CPU: no polling (see ThreadState::spin), straight to
        // sleep. Set before the first lock operation reads it.
        cpu_set_t cpus;
        CPU_ZERO(&cpus);
        CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &cpus);
        if (sched_setaffinity(0, sizeof(cpus), &cpus) != 0) return 5;
      }
      for (int i = 0; i < kIters; ++i) {
        if (h->m.Lock(Deadline::Infinite()) != RobustMutex::Result::kAcquired) {
          return 1;
        }
        const int64_t v = h->counter;
        if (i % kHoldEvery == 0) usleep(2000);
        h->counter = v + 1;  // not atomic: only the mutex protects it
        if (!h->m.Unlock()) return 2;
      }
      return 0;
    }));
  }
  const absl::Time end = absl::Now() + absl::Seconds(30);
  for (pid_t p : pids) EXPECT_EQ(WaitChildUntil(p, end), 0);
  EXPECT_EQ(h->counter, static_cast<int64_t>(fallback.size()) * kIters);
  EXPECT_FALSE(h->m.Locked());
  EXPECT_EQ(h->m.sleepers(), 0u);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(RobustMutexTest, SleepersAreWokenPlainStoreRelease) {
  Hammer({false, false, false, false});
}

TEST(RobustMutexTest, SleepersAreWokenFallbackRelease) {
  Hammer({true, true, true, true});
}

TEST(RobustMutexTest, SleepersAreWokenMixedRelease) {
  Hammer({false, true, false, true});
}

TEST(RobustMutexTest, SleepersAreWokenOnOneCpu) {
  Hammer({false, false, false}, /*one_cpu=*/true);
}

// Several sleepers and a holder that dies: the kernel wakes one sleeper
// (FUTEX_WAITERS is set in the word), which is told; each later one gets the
// mutex in turn.
TEST(RobustMutexTest, SleepersGetTheMutexAfterTheHolderDies) {
  testing::LeakCheck leaks;
  struct Shared {
    RobustMutex m;
    std::atomic<int> held{0};
    std::atomic<int> died{0};
    std::atomic<int> acquired{0};
  };
  SharedMapping<Shared> s;
  pid_t holder = ForkChild([&] {
    if (s->m.Lock(Deadline::Infinite()) != RobustMutex::Result::kAcquired) {
      return 1;
    }
    s->held.store(1);
    for (;;) pause();
  });
  ASSERT_TRUE(Eventually([&] { return s->held.load() == 1; }));
  std::vector<pid_t> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(ForkChild([&] {
      RobustMutex::Result r = s->m.Lock(Deadline::Infinite());
      if (r == RobustMutex::Result::kOwnerDied) {
        s->died.fetch_add(1);
        s->m.MarkConsistent();
      } else if (r != RobustMutex::Result::kAcquired) {
        return 1;
      }
      s->acquired.fetch_add(1);
      return s->m.Unlock() ? 0 : 2;
    }));
  }
  // Let them go to sleep (their spinning lasts well under 100 ms).
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(s->acquired.load(), 0);
  EXPECT_NE(s->m.word() & FUTEX_WAITERS, 0u);
  ASSERT_EQ(kill(holder, SIGKILL), 0);
  EXPECT_EQ(WaitChild(holder), -SIGKILL);
  const absl::Time end = absl::Now() + absl::Seconds(30);
  for (pid_t p : waiters) EXPECT_EQ(WaitChildUntil(p, end), 0);
  EXPECT_EQ(s->acquired.load(), 3);
  EXPECT_EQ(s->died.load(), 1);
  EXPECT_FALSE(s->m.Locked());
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(RobustMutexTest, RecursiveHolderDiesTheNextOwnerStartsAtDepthOne) {
  SharedMapping<RobustMutex> m;
  SharedMapping<std::atomic<int>> stage(0);
  pid_t pid = ForkChild([&] {
    for (int i = 0; i < 3; ++i) {
      if (m->Lock(Deadline::Infinite(), true) != RobustMutex::Result::kAcquired) {
        return 1;
      }
    }
    stage->store(1);
    for (;;) pause();
  });
  ASSERT_TRUE(Eventually([&] { return stage->load() == 1; }));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(WaitChild(pid), -SIGKILL);
  ASSERT_EQ(m->Lock(Deadline::After(absl::Seconds(10))),
            RobustMutex::Result::kOwnerDied);
  EXPECT_EQ(m->count(), 1u);
  EXPECT_TRUE(m->MarkConsistent());
  EXPECT_TRUE(m->Unlock());
  EXPECT_FALSE(m->Locked());
  // And the fast path works again from depth zero.
  EXPECT_EQ(m->Lock(Deadline::Infinite()), RobustMutex::Result::kAcquired);
  EXPECT_TRUE(m->Unlock());
  EXPECT_FALSE(m->Locked());
}

TEST(RobustMutexTest, RecursiveCountAndUnlockAll) {
  RobustMutex m;
  ASSERT_EQ(m.Lock(Deadline::Infinite(), true), RobustMutex::Result::kAcquired);
  ASSERT_EQ(m.Lock(Deadline::Infinite(), true), RobustMutex::Result::kAcquired);
  EXPECT_EQ(m.Lock(Deadline::Infinite(), false), RobustMutex::Result::kDeadlock);
  EXPECT_EQ(m.count(), 2u);
  EXPECT_EQ(m.UnlockAll(), 2u);
  EXPECT_FALSE(m.Locked());
  EXPECT_EQ(m.Relock(2), RobustMutex::Result::kAcquired);
  EXPECT_EQ(m.count(), 2u);
  EXPECT_TRUE(m.Unlock());
  EXPECT_TRUE(m.Locked());
  EXPECT_TRUE(m.Unlock());
  EXPECT_FALSE(m.Locked());
  EXPECT_FALSE(m.Unlock());
}

}  // namespace
}  // namespace sync_internal
}  // namespace mp
