#include "sync/condition.h"

#include <signal.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "sync/guard.h"
#include "sync/internal/test_util.h"
#include "sync/sync.h"

namespace mp {
namespace {

using sync_testing::ForkChild;
using sync_testing::SharedMapping;
using sync_testing::WaitChild;

struct Box {
  Condition cv;
  int items = 0;
  int done = 0;
};

TEST(ConditionTest, MisuseWithoutTheLockIsAnError) {
  Condition cv;
  EXPECT_EQ(cv.Wait(absl::ZeroDuration()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cv.WaitFor([] { return false; }).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cv.Notify().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cv.NotifyAll().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cv.Release().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ConditionTest, WaitTimesOutAndHoldsTheLockAgain) {
  Condition cv;
  ASSERT_TRUE(cv.Acquire().ok());
  ASSERT_TRUE(cv.Acquire().ok());  // its own lock is an RLock
  const absl::Time start = absl::Now();
  EXPECT_EQ(cv.Wait(absl::Milliseconds(30)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_EQ(cv.WaitFor([] { return false; }, absl::Milliseconds(10)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(cv.WaitFor([] { return true; }, absl::ZeroDuration()).ok());
  // Both recursion levels are held again.
  ASSERT_TRUE(cv.Release().ok());
  ASSERT_TRUE(cv.Release().ok());
  EXPECT_EQ(cv.Release().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ConditionTest, ProducerConsumerAcrossProcesses) {
  testing::LeakCheck leaks;
  SharedMapping<Box> box;
  constexpr int kItems = 500;
  pid_t consumer = ForkChild([&] {
    int got = 0;
    while (got < kItems) {
      Guard g(box->cv);
      if (!g.status().ok()) return 1;
      absl::Status s =
          box->cv.WaitFor([&] { return box->items > 0; }, absl::Seconds(10));
      if (!s.ok()) return 2;
      --box->items;
      ++got;
      if (!box->cv.NotifyAll().ok()) return 3;
    }
    return 0;
  });
  for (int i = 0; i < kItems; ++i) {
    Guard g(box->cv);
    ASSERT_TRUE(g.held());
    ASSERT_TRUE(box->cv.WaitFor([&] { return box->items < 4; }, absl::Seconds(10)).ok());
    ++box->items;
    ASSERT_TRUE(box->cv.Notify().ok());
  }
  EXPECT_EQ(WaitChild(consumer), 0);
  EXPECT_EQ(box->items, 0);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

struct WithLock {
  Lock lock;
  Condition cv{&lock};
  int flag = 0;
};

TEST(ConditionTest, UsesAGivenLockInTheSameMapping) {
  testing::LeakCheck leaks;
  SharedMapping<WithLock> s;
  pid_t pid = ForkChild([&] {
    absl::SleepFor(absl::Milliseconds(20));
    if (!s->lock.Acquire().ok()) return 1;
    s->flag = 1;
    if (!s->cv.NotifyAll().ok()) return 2;
    return s->lock.Release().ok() ? 0 : 3;
  });
  ASSERT_TRUE(s->cv.Acquire().ok());
  EXPECT_TRUE(s->lock.HeldByCurrentThread());
  // A plain Lock is not recursive through the Condition either.
  EXPECT_EQ(s->cv.Acquire().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(s->cv.WaitFor([&] { return s->flag == 1; }, absl::Seconds(10)).ok());
  ASSERT_TRUE(s->lock.Release().ok());
  EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ConditionTest, WaiterReacquiresAfterNotifierDiesHoldingTheLock) {
  testing::LeakCheck leaks;
  SharedMapping<Box> box;
  ASSERT_TRUE(box->cv.Acquire().ok());
  pid_t pid = ForkChild([&] {
    if (!box->cv.Acquire().ok()) return 1;  // blocks until the parent waits
    box->items = 1;
    box->cv.NotifyAll().IgnoreError();
    ::raise(SIGKILL);  // dies holding the lock
    return 2;
  });
  absl::Status s =
      box->cv.WaitFor([&] { return box->items == 1; }, absl::Seconds(20));
  EXPECT_TRUE(OwnerDied(s)) << s;
  EXPECT_EQ(WaitChild(pid), -SIGKILL);
  EXPECT_EQ(box->items, 1);
  ASSERT_TRUE(box->cv.Release().ok());
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ConditionTest, SignalsDoNotShortenTheWait) {
  Condition cv;
  sync_testing::SignalPester pester(SIGUSR1);
  ASSERT_TRUE(cv.Acquire().ok());
  const absl::Time start = absl::Now();
  EXPECT_EQ(cv.Wait(absl::Milliseconds(150)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  ASSERT_TRUE(cv.Release().ok());
  pester.Stop();
}

}  // namespace
}  // namespace mp
