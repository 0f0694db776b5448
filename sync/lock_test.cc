#include "sync/lock.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <type_traits>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "shm/internal/test_prefix.h"
#include "sync/guard.h"
#include "sync/internal/test_util.h"
#include "sync/sync.h"

namespace mp {
namespace {

using shm_internal::TestPrefix;

using sync_testing::CountedLock;
using sync_testing::Eventually;
using sync_testing::ForkChild;
using sync_testing::SharedMapping;
using sync_testing::WaitChild;

// Every primitive can live in shared memory: standard layout, nothing to
// destroy, usable through SharedObject<T>.
template <typename T>
constexpr bool kShareable =
    std::is_standard_layout<T>::value && std::is_trivially_destructible<T>::value;
static_assert(kShareable<Lock>, "");
static_assert(kShareable<RLock>, "");
static_assert(kShareable<Semaphore>, "");
static_assert(kShareable<BoundedSemaphore>, "");
static_assert(kShareable<Condition>, "");
static_assert(kShareable<Event>, "");
static_assert(kShareable<Barrier>, "");

TEST(LockTest, ConditionLivesInASharedObject) {
  absl::StatusOr<SharedObject<Condition>> cv = SharedObject<Condition>::Create();
  ASSERT_TRUE(cv.ok()) << cv.status();
  absl::StatusOr<SharedObject<Condition>> same =
      SharedObject<Condition>::Attach(cv->name());
  ASSERT_TRUE(same.ok());
  // The Condition's own lock is found relative to it, at either address.
  ASSERT_TRUE((*same)->Acquire().ok());
  std::thread([&] {
    EXPECT_EQ((*cv)->Acquire(absl::ZeroDuration()).code(),
              absl::StatusCode::kDeadlineExceeded);
  }).join();
  ASSERT_TRUE((*cv)->Release().ok());  // the same lock, through the other view
  EXPECT_EQ((*same)->Release().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(LockTest, AcquireRelease) {
  Lock lock;
  EXPECT_FALSE(lock.Locked());
  ASSERT_TRUE(lock.Acquire().ok());
  EXPECT_TRUE(lock.Locked());
  EXPECT_TRUE(lock.HeldByCurrentThread());
  EXPECT_FALSE(lock.Inconsistent());
  ASSERT_TRUE(lock.Release().ok());
  EXPECT_FALSE(lock.Locked());
  EXPECT_TRUE(lock.TryAcquire());
  EXPECT_TRUE(lock.Release().ok());
}

TEST(LockTest, ZeroBytesAreAnUnlockedLock) {
  static_assert(sizeof(Lock) == 40, "");
  static_assert(std::is_standard_layout<Lock>::value, "");
  alignas(8) char bytes[sizeof(Lock)] = {};
  Lock* lock = reinterpret_cast<Lock*>(bytes);
  EXPECT_FALSE(lock->Locked());
  ASSERT_TRUE(lock->Acquire().ok());
  ASSERT_TRUE(lock->Release().ok());
}

TEST(LockTest, MisuseIsAnError) {
  Lock lock;
  EXPECT_EQ(lock.Release().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(lock.MarkConsistent().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(lock.Acquire().ok());
  // Python would deadlock; we refuse.
  EXPECT_EQ(lock.Acquire().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(lock.Acquire(absl::ZeroDuration()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(lock.TryAcquire());
  // Another thread may not release it.
  std::thread([&] {
    EXPECT_EQ(lock.Release().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_FALSE(lock.HeldByCurrentThread());
  }).join();
  EXPECT_TRUE(lock.Release().ok());
}

// Holds `lock` from a thread of its own, from construction until Release()
// (or destruction).
class HeldByAnotherThread {
 public:
  explicit HeldByAnotherThread(Lock* lock)
      : thread_([this, lock] {
          ASSERT_TRUE(lock->Acquire().ok());
          held_ = true;
          while (!done_) absl::SleepFor(absl::Milliseconds(1));
          ASSERT_TRUE(lock->Release().ok());
        }) {
    while (!held_) absl::SleepFor(absl::Milliseconds(1));
  }
  ~HeldByAnotherThread() { Release(); }
  HeldByAnotherThread(const HeldByAnotherThread&) = delete;
  HeldByAnotherThread& operator=(const HeldByAnotherThread&) = delete;

  // Releases the lock and joins the thread.
  void Release() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> held_{false}, done_{false};
  std::thread thread_;
};

TEST(LockTest, TimesOutWhileHeldElsewhere) {
  Lock lock;
  HeldByAnotherThread holder(&lock);
  EXPECT_FALSE(lock.TryAcquire());
  EXPECT_EQ(lock.Acquire(absl::ZeroDuration()).code(),
            absl::StatusCode::kDeadlineExceeded);
  const absl::Time start = absl::Now();
  EXPECT_EQ(lock.Acquire(absl::Milliseconds(50)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
  holder.Release();
  EXPECT_TRUE(lock.Acquire(absl::Seconds(10)).ok());
  EXPECT_TRUE(lock.Release().ok());
}

TEST(LockTest, SignalsDoNotShortenTheTimeout) {
  Lock lock;
  HeldByAnotherThread holder(&lock);
  sync_testing::SignalPester pester(SIGUSR1);
  const absl::Time start = absl::Now();
  EXPECT_EQ(lock.Acquire(absl::Milliseconds(200)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  pester.Stop();
  holder.Release();
}

TEST(LockTest, ExcludesAcrossForkedProcesses) {
  testing::LeakCheck leaks;
  SharedMapping<CountedLock> shared;
  constexpr int kChildren = 3, kIters = 20000;
  std::vector<pid_t> pids;
  for (int c = 0; c < kChildren; ++c) {
    pids.push_back(ForkChild([&] {
      for (int i = 0; i < kIters; ++i) {
        if (!shared->lock.Acquire().ok()) return 1;
        int64_t v = shared->counter;
        shared->counter = v + 1;  // not atomic: only the lock protects it
        if (!shared->lock.Release().ok()) return 2;
      }
      return 0;
    }));
  }
  for (pid_t p : pids) EXPECT_EQ(WaitChild(p), 0);
  EXPECT_EQ(shared->counter, kChildren * kIters);
  EXPECT_FALSE(shared->lock.Locked());
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(LockTest, OwnerKilledWithSigkillIsReportedToTheNextAcquirer) {
  testing::LeakCheck leaks;
  SharedMapping<CountedLock> shared;
  SharedMapping<std::atomic<int>> stage(0);
  pid_t pid = ForkChild([&] {
    if (!shared->lock.Acquire().ok()) return 1;
    shared->counter = -1;  // half-done update
    stage->store(1);
    for (;;) pause();
  });
  ASSERT_TRUE(Eventually([&] { return stage->load() == 1; }));
  EXPECT_TRUE(shared->lock.Locked());
  EXPECT_EQ(shared->lock.Acquire(absl::Milliseconds(10)).code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(WaitChild(pid), -SIGKILL);

  absl::Status s = shared->lock.Acquire(absl::Seconds(10));
  EXPECT_TRUE(OwnerDied(s)) << s;
  EXPECT_TRUE(shared->lock.HeldByCurrentThread());
  EXPECT_TRUE(shared->lock.Inconsistent());
  // Not repaired: the next acquirer is told again.
  ASSERT_TRUE(shared->lock.Release().ok());
  EXPECT_TRUE(OwnerDied(shared->lock.Acquire()));
  shared->counter = 0;  // repair
  ASSERT_TRUE(shared->lock.MarkConsistent().ok());
  ASSERT_TRUE(shared->lock.Release().ok());
  EXPECT_TRUE(shared->lock.Acquire().ok());
  EXPECT_FALSE(shared->lock.Inconsistent());
  ASSERT_TRUE(shared->lock.Release().ok());
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(LockTest, SleepingWaiterWakesWhenOwnerIsKilled) {
  testing::LeakCheck leaks;
  SharedMapping<Lock> lock;
  SharedMapping<std::atomic<int>> stage(0);
  pid_t holder = ForkChild([&] {
    if (!lock->Acquire().ok()) return 1;
    stage->store(1);
    for (;;) pause();
  });
  ASSERT_TRUE(Eventually([&] { return stage->load() == 1; }));
  // The waiter sleeps in the kernel (no timeout, no polling).
  std::thread killer([&] {
    absl::SleepFor(absl::Milliseconds(100));
    kill(holder, SIGKILL);
  });
  absl::Status s = lock->Acquire();
  EXPECT_TRUE(OwnerDied(s)) << s;
  killer.join();
  EXPECT_EQ(WaitChild(holder), -SIGKILL);
  ASSERT_TRUE(lock->MarkConsistent().ok());
  ASSERT_TRUE(lock->Release().ok());
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(LockTest, ThreadExitingWhileHoldingIsAnOwnerDeath) {
  Lock lock;
  std::thread([&] { ASSERT_TRUE(lock.Acquire().ok()); }).join();
  absl::Status s = lock.Acquire(absl::Seconds(10));
  EXPECT_TRUE(OwnerDied(s)) << s;
  ASSERT_TRUE(lock.MarkConsistent().ok());
  ASSERT_TRUE(lock.Release().ok());
}

TEST(LockTest, GuardReleasesAtScopeEnd) {
  Lock lock;
  {
    Guard g(lock);
    EXPECT_TRUE(g.held());
    EXPECT_TRUE(g.status().ok());
    EXPECT_TRUE(lock.HeldByCurrentThread());
    Guard again(lock, absl::ZeroDuration());
    EXPECT_FALSE(again.held());
    EXPECT_EQ(again.Release().code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_FALSE(lock.Locked());
  {
    Guard g(lock);
    EXPECT_TRUE(g.Release().ok());
    EXPECT_FALSE(lock.Locked());
  }
  EXPECT_FALSE(lock.Locked());
}

TEST(LockTest, SpawnedProcessesAttachByName) {
  absl::StatusOr<SharedObject<CountedLock>> warm = SharedObject<CountedLock>::Create();
  ASSERT_TRUE(warm.ok());
  testing::LeakCheck leaks(TestPrefix());
  {
    absl::StatusOr<SharedObject<CountedLock>> shared =
        SharedObject<CountedLock>::Create();
    ASSERT_TRUE(shared.ok()) << shared.status();
    auto a = sync_testing::StartHelper({"lock-count", shared->name(), "5000"});
    auto b = sync_testing::StartHelper({"lock-count", shared->name(), "5000"});
    for (int i = 0; i < 5000; ++i) {
      ASSERT_TRUE((*shared)->lock.Acquire().ok());
      ++(*shared)->counter;
      ASSERT_TRUE((*shared)->lock.Release().ok());
    }
    EXPECT_EQ(WaitChild(a.pid), 0);
    EXPECT_EQ(WaitChild(b.pid), 0);
    EXPECT_EQ((*shared)->counter, 15000);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(LockTest, SpawnedHolderKilledIsReported) {
  absl::StatusOr<SharedObject<Lock>> lock = SharedObject<Lock>::Create();
  ASSERT_TRUE(lock.ok());
  testing::LeakCheck leaks;
  auto h = sync_testing::StartHelper({"lock-hold", lock->name()});
  ASSERT_EQ(h.ReadLine(), "held");
  EXPECT_EQ((*lock)->Acquire(absl::ZeroDuration()).code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_EQ(kill(h.pid, SIGKILL), 0);
  EXPECT_EQ(WaitChild(h.pid), -SIGKILL);
  EXPECT_TRUE(OwnerDied((*lock)->Acquire(absl::Seconds(10))));
  ASSERT_TRUE((*lock)->Release().ok());
  h.out.reset();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace mp
