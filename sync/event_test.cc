#include "sync/event.h"

#include <signal.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "sync/internal/futex.h"
#include "sync/internal/test_util.h"
#include "sync/sync.h"

namespace mp {
namespace {

using sync_testing::ForkChild;
using sync_testing::SharedMapping;
using sync_testing::WaitChild;

TEST(EventTest, SetClearIsSet) {
  Event e;
  EXPECT_FALSE(e.IsSet());
  EXPECT_FALSE(e.Wait(absl::ZeroDuration()));
  e.Set();
  EXPECT_TRUE(e.IsSet());
  EXPECT_TRUE(e.Wait());
  EXPECT_TRUE(e.Wait(absl::ZeroDuration()));
  e.Clear();
  EXPECT_FALSE(e.IsSet());
  const absl::Time start = absl::Now();
  EXPECT_FALSE(e.Wait(absl::Milliseconds(30)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
}

TEST(EventTest, SetWakesAllWaitingProcesses) {
  testing::LeakCheck leaks;
  SharedMapping<Event> e;
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    pids.push_back(ForkChild([&] { return e->Wait(absl::Seconds(10)) ? 0 : 1; }));
  }
  absl::SleepFor(absl::Milliseconds(30));
  e->Set();
  for (pid_t p : pids) EXPECT_EQ(WaitChild(p), 0);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(EventTest, SignalsDoNotShortenTheWait) {
  Event e;
  sync_testing::SignalPester pester(SIGUSR1);
  const absl::Time start = absl::Now();
  EXPECT_FALSE(e.Wait(absl::Milliseconds(150)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  pester.Stop();
}

// Two processes take turns N times, with polling before sleeps on (the
// default, where more than one CPU is allowed) and forced off (every wait
// that finds the flag clear sleeps): each side checks the turn counter it
// was handed, so a lost or duplicated hand-over fails the test (or hangs
// into the 10 s timeouts, which fail it too).
void EventPingPong(bool spin) {
  testing::LeakCheck leaks;
  struct Pair {
    Event ping;
    Event pong;
    int64_t turn = 0;
  };
  SharedMapping<Pair> p;
  sync_internal::SetSpinDisabledForTesting(!spin);  // inherited by the child
  constexpr int kRounds = 2000;
  pid_t pid = ForkChild([&] {
    for (int i = 0; i < kRounds; ++i) {
      if (!p->ping.Wait(absl::Seconds(10))) return 1;
      p->ping.Clear();
      if (p->turn != 2 * i + 1) return 2;
      p->turn = 2 * i + 2;
      p->pong.Set();
    }
    return 0;
  });
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_EQ(p->turn, 2 * i);
    p->turn = 2 * i + 1;
    p->ping.Set();
    ASSERT_TRUE(p->pong.Wait(absl::Seconds(10))) << "round " << i;
    p->pong.Clear();
  }
  EXPECT_EQ(WaitChild(pid), 0);
  sync_internal::SetSpinDisabledForTesting(false);
  EXPECT_EQ(p->turn, 2 * kRounds);
  EXPECT_FALSE(p->ping.IsSet());
  EXPECT_FALSE(p->pong.IsSet());
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(EventTest, PingPongBetweenProcessesSpinning) { EventPingPong(true); }
TEST(EventTest, PingPongBetweenProcessesNoSpin) { EventPingPong(false); }

// Timeouts within and beyond the polling phase (~50 us) expire, and not
// early, while nobody sets the flag.
TEST(EventTest, WaitTimesOutDuringAndAfterPolling) {
  for (absl::Duration t : {absl::Nanoseconds(1), absl::Microseconds(5),
                           absl::Microseconds(40), absl::Microseconds(200),
                           absl::Milliseconds(5)}) {
    Event e;
    const absl::Time start = absl::Now();
    EXPECT_FALSE(e.Wait(t)) << t;
    EXPECT_GE(absl::Now() - start, t);
  }
}

TEST(EventTest, SpawnedProcessSetsByName) {
  absl::StatusOr<SharedObject<Event>> e = SharedObject<Event>::Create();
  ASSERT_TRUE(e.ok());
  testing::LeakCheck leaks;
  auto h = sync_testing::StartHelper({"event-set", e->name()});
  EXPECT_TRUE((*e)->Wait(absl::Seconds(10)));
  EXPECT_EQ(WaitChild(h.pid), 0);
  h.out.reset();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace mp
