#include "sync/semaphore.h"

#include <signal.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "sync/guard.h"
#include "sync/internal/futex.h"
#include "sync/internal/test_util.h"
#include "sync/sync.h"

namespace mp {
namespace {

using sync_testing::ForkChild;
using sync_testing::SharedMapping;
using sync_testing::WaitChild;

TEST(SemaphoreTest, CountsDown) {
  Semaphore s(2);
  EXPECT_EQ(s.value(), 2u);
  EXPECT_TRUE(s.Acquire().ok());
  EXPECT_TRUE(s.TryAcquire());
  EXPECT_EQ(s.value(), 0u);
  EXPECT_FALSE(s.TryAcquire());
  EXPECT_EQ(s.Acquire(absl::ZeroDuration()).code(),
            absl::StatusCode::kDeadlineExceeded);
  const absl::Time start = absl::Now();
  EXPECT_EQ(s.Acquire(absl::Milliseconds(30)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_TRUE(s.Release(2).ok());
  EXPECT_EQ(s.value(), 2u);
  EXPECT_EQ(s.Release(0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Release(Semaphore::kMaxValue).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(s.value(), 2u);
}

TEST(SemaphoreTest, BoundedRefusesOverRelease) {
  BoundedSemaphore s(2);
  EXPECT_EQ(s.Release().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s.Acquire().ok());
  EXPECT_EQ(s.Release(2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.value(), 1u);
  EXPECT_TRUE(s.Release().ok());
  EXPECT_EQ(s.value(), 2u);
  { Guard g(s); EXPECT_EQ(s.value(), 1u); }
  EXPECT_EQ(s.value(), 2u);
}

TEST(SemaphoreTest, ReleaseFromAnotherProcessWakesTheWaiter) {
  testing::LeakCheck leaks;
  SharedMapping<Semaphore> s(0u);
  pid_t pid = ForkChild([&] {
    absl::SleepFor(absl::Milliseconds(50));
    return s->Release().ok() ? 0 : 1;
  });
  EXPECT_TRUE(s->Acquire(absl::Seconds(10)).ok());
  EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

// A two-process ping-pong of 2000 rounds, with polling before sleeps on (the default
// where more than one CPU is allowed) and forced off, checking the turn
// counter each side was handed.
void SemaphorePingPong(bool spin) {
  testing::LeakCheck leaks;
  struct Pair {
    Semaphore ping{0};
    Semaphore pong{0};
    int64_t turn = 0;
  };
  SharedMapping<Pair> p;
  sync_internal::SetSpinDisabledForTesting(!spin);  // inherited by the child
  constexpr int kRounds = 2000;
  pid_t pid = ForkChild([&] {
    for (int i = 0; i < kRounds; ++i) {
      if (!p->ping.Acquire(absl::Seconds(10)).ok()) return 1;
      if (p->turn != 2 * i + 1) return 2;
      p->turn = 2 * i + 2;
      if (!p->pong.Release().ok()) return 3;
    }
    return 0;
  });
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_EQ(p->turn, 2 * i);
    p->turn = 2 * i + 1;
    ASSERT_TRUE(p->ping.Release().ok());
    ASSERT_TRUE(p->pong.Acquire(absl::Seconds(10)).ok()) << "round " << i;
  }
  EXPECT_EQ(WaitChild(pid), 0);
  sync_internal::SetSpinDisabledForTesting(false);
  EXPECT_EQ(p->turn, 2 * kRounds);
  EXPECT_EQ(p->ping.value(), 0u);
  EXPECT_EQ(p->pong.value(), 0u);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(SemaphoreTest, PingPongSpinning) { SemaphorePingPong(true); }
TEST(SemaphoreTest, PingPongNoSpin) { SemaphorePingPong(false); }

// Timeouts within and beyond the polling phase (~50 us) expire, and not
// early, while nobody releases; the value is untouched.
TEST(SemaphoreTest, AcquireTimesOutDuringAndAfterPolling) {
  for (absl::Duration t : {absl::Nanoseconds(1), absl::Microseconds(5),
                           absl::Microseconds(40), absl::Microseconds(200),
                           absl::Milliseconds(5)}) {
    Semaphore s(0);
    const absl::Time start = absl::Now();
    EXPECT_EQ(s.Acquire(t).code(), absl::StatusCode::kDeadlineExceeded) << t;
    EXPECT_GE(absl::Now() - start, t);
    EXPECT_EQ(s.value(), 0u);
  }
}

TEST(SemaphoreTest, SignalsDoNotShortenTheTimeout) {
  Semaphore s(0);
  sync_testing::SignalPester pester(SIGUSR2);
  const absl::Time start = absl::Now();
  EXPECT_EQ(s.Acquire(absl::Milliseconds(150)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  pester.Stop();
}

TEST(SemaphoreTest, SpawnedProcessReleasesByName) {
  absl::StatusOr<SharedObject<Semaphore>> s = SharedObject<Semaphore>::Create(0u);
  ASSERT_TRUE(s.ok());
  testing::LeakCheck leaks;
  auto h = sync_testing::StartHelper({"sem-release", s->name()});
  EXPECT_TRUE((*s)->Acquire(absl::Seconds(10)).ok());
  EXPECT_EQ(WaitChild(h.pid), 0);
  h.out.reset();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace mp
