#include "sync/semaphore.h"

#include <signal.h>

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
using sync_testing::TurnPingPong;
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

// Semaphore hand-overs between two processes (TurnPingPong); both values
// end at 0.
void SemaphorePingPong(bool spin) {
  testing::LeakCheck leaks;
  TurnPingPong<Semaphore>(
      spin, [](Semaphore& s) { return s.Release().ok(); },
      [](Semaphore& s) { return s.Acquire(absl::Seconds(10)).ok(); },
      [](Semaphore& ping, Semaphore& pong) {
        EXPECT_EQ(ping.value(), 0u);
        EXPECT_EQ(pong.value(), 0u);
      },
      0u);
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
