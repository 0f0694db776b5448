#include "sync/event.h"

#include <signal.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "sync/internal/test_util.h"
#include "sync/sync.h"

namespace mp {
namespace {

using sync_testing::ForkChild;
using sync_testing::SharedMapping;
using sync_testing::TurnPingPong;
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

// Event hand-overs between two processes (TurnPingPong): a waiter clears
// the flag it saw set; no flag is left set.
void EventPingPong(bool spin) {
  testing::LeakCheck leaks;
  TurnPingPong<Event>(
      spin,
      [](Event& e) {
        e.Set();
        return true;
      },
      [](Event& e) {
        if (!e.Wait(absl::Seconds(10))) return false;
        e.Clear();
        return true;
      },
      [](Event& ping, Event& pong) {
        EXPECT_FALSE(ping.IsSet());
        EXPECT_FALSE(pong.IsSet());
      });
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
