#include "sync/internal/robust_mutex.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>

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
