#include "sync/rlock.h"

#include <signal.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "sync/internal/test_util.h"
#include "sync/sync.h"

namespace mp {
namespace {

using sync_testing::WaitChild;

TEST(RLockTest, RecursesForTheHolder) {
  RLock lock;
  ASSERT_TRUE(lock.Acquire().ok());
  ASSERT_TRUE(lock.Acquire().ok());
  EXPECT_TRUE(lock.TryAcquire());
  EXPECT_EQ(lock.count(), 3u);
  std::thread([&] {
    EXPECT_FALSE(lock.TryAcquire());
    EXPECT_EQ(lock.Acquire(absl::Milliseconds(20)).code(),
              absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(lock.count(), 0u);
  }).join();
  ASSERT_TRUE(lock.Release().ok());
  ASSERT_TRUE(lock.Release().ok());
  EXPECT_TRUE(lock.Locked());
  ASSERT_TRUE(lock.Release().ok());
  EXPECT_FALSE(lock.Locked());
}

TEST(RLockTest, ReleasingUnownedIsAnError) {
  RLock lock;
  EXPECT_EQ(lock.Release().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(lock.Acquire().ok());
  std::thread([&] {
    EXPECT_EQ(lock.Release().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(lock.MarkConsistent().code(),
              absl::StatusCode::kFailedPrecondition);
  }).join();
  EXPECT_TRUE(lock.Release().ok());
}

TEST(RLockTest, HolderKilledWhileRecursivelyHeldIsReported) {
  absl::StatusOr<SharedObject<RLock>> lock = SharedObject<RLock>::Create();
  ASSERT_TRUE(lock.ok());
  testing::LeakCheck leaks;
  auto h = sync_testing::StartHelper({"rlock-hold", lock->name()});
  ASSERT_EQ(h.ReadLine(), "held");
  EXPECT_FALSE((*lock)->TryAcquire());
  ASSERT_EQ(kill(h.pid, SIGKILL), 0);
  EXPECT_EQ(WaitChild(h.pid), -SIGKILL);
  absl::Status s = (*lock)->Acquire(absl::Seconds(10));
  EXPECT_TRUE(OwnerDied(s)) << s;
  EXPECT_EQ((*lock)->count(), 1u);  // the dead owner's count is gone
  EXPECT_TRUE((*lock)->Inconsistent());
  ASSERT_TRUE((*lock)->MarkConsistent().ok());
  ASSERT_TRUE((*lock)->Release().ok());
  EXPECT_FALSE((*lock)->Locked());
  h.out.reset();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace mp
