#include "sync/barrier.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "sync/internal/test_util.h"
#include "sync/sync.h"

namespace mp {
namespace {

using sync_testing::Eventually;
using sync_testing::ForkChild;
using sync_testing::SharedMapping;
using sync_testing::WaitChild;

struct Arrivals {
  explicit Arrivals(uint32_t parties) : barrier(parties) {}
  Barrier barrier;
  std::atomic<int> index_mask{0};
  std::atomic<int> actions{0};
};

TEST(BarrierTest, ReleasesAllPartiesWithDistinctIndices) {
  testing::LeakCheck leaks;
  SharedMapping<Arrivals> a(4u);
  EXPECT_EQ(a->barrier.parties(), 4u);
  for (int round = 0; round < 3; ++round) {
    a->index_mask = 0;
    std::vector<pid_t> pids;
    for (int i = 0; i < 3; ++i) {
      pids.push_back(ForkChild([&] {
        absl::StatusOr<int> idx =
            a->barrier.Wait([&] { a->actions++; }, absl::Seconds(10));
        if (!idx.ok()) return 1;
        a->index_mask |= 1 << *idx;
        return 0;
      }));
    }
    EXPECT_TRUE(Eventually([&] { return a->barrier.n_waiting() == 3; }));
    absl::StatusOr<int> idx = a->barrier.Wait([&] { a->actions++; });
    ASSERT_TRUE(idx.ok()) << idx.status();
    EXPECT_EQ(*idx, 3);  // the last to arrive
    a->index_mask |= 1 << *idx;
    for (pid_t p : pids) EXPECT_EQ(WaitChild(p), 0);
    EXPECT_EQ(a->index_mask.load(), 0xf);
    EXPECT_EQ(a->barrier.n_waiting(), 0u);
  }
  EXPECT_EQ(a->actions.load(), 3);  // once per round
  EXPECT_FALSE(a->barrier.broken());
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(BarrierTest, TimeoutBreaksTheBarrierForEveryone) {
  Barrier b(3, absl::Milliseconds(50));  // default timeout
  absl::Status other;
  std::thread t([&] { other = b.Wait(absl::Seconds(20)).status(); });
  EXPECT_TRUE(Eventually([&] { return b.n_waiting() == 1; }));
  EXPECT_EQ(b.Wait().status().code(), absl::StatusCode::kDeadlineExceeded);
  t.join();
  EXPECT_EQ(other.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(b.broken());
  EXPECT_EQ(b.Wait().status().code(), absl::StatusCode::kAborted);
  b.Reset();
  EXPECT_FALSE(b.broken());
}

TEST(BarrierTest, AbortAndResetWakeWaiters) {
  Barrier b(2);
  absl::Status first;
  std::thread t([&] { first = b.Wait(absl::Seconds(20)).status(); });
  EXPECT_TRUE(Eventually([&] { return b.n_waiting() == 1; }));
  b.Abort();
  t.join();
  EXPECT_EQ(first.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(b.broken());
  EXPECT_EQ(b.n_waiting(), 0u);
  b.Reset();
  EXPECT_FALSE(b.broken());
  std::thread t2([&] { first = b.Wait(absl::Seconds(20)).status(); });
  EXPECT_TRUE(Eventually([&] { return b.n_waiting() == 1; }));
  b.Reset();  // the waiter is aborted, the barrier usable again
  t2.join();
  EXPECT_EQ(first.code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(b.broken());
  absl::StatusOr<int> i1, i2;
  std::thread t3([&] { i1 = b.Wait(absl::Seconds(20)); });
  i2 = b.Wait(absl::Seconds(20));
  t3.join();
  ASSERT_TRUE(i1.ok());
  ASSERT_TRUE(i2.ok());
  EXPECT_EQ(*i1 + *i2, 1);
}

TEST(BarrierTest, SignalsDoNotShortenTheTimeout) {
  Barrier b(2);
  sync_testing::SignalPester pester(SIGUSR1);
  const absl::Time start = absl::Now();
  EXPECT_EQ(b.Wait(absl::Milliseconds(150)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  pester.Stop();
}

TEST(BarrierTest, ZeroPartiesIsInvalid) {
  Barrier b(0);
  EXPECT_EQ(b.Wait().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BarrierTest, OnePartyNeverWaits) {
  Barrier b(1);
  int ran = 0;
  absl::StatusOr<int> i = b.Wait([&] { ++ran; });
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(*i, 0);
  EXPECT_EQ(ran, 1);
}

TEST(BarrierTest, WaitingPartyKilledBreaksTheBarrier) {
  testing::LeakCheck leaks;
  SharedMapping<Barrier> b(3u);
  pid_t victim = ForkChild([&] { return b->Wait().ok() ? 0 : 1; });
  ASSERT_TRUE(Eventually([&] { return b->n_waiting() == 1; }));
  absl::Status second;
  std::thread t([&] { second = b->Wait(absl::Seconds(20)).status(); });
  ASSERT_TRUE(Eventually([&] { return b->n_waiting() == 2; }));
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  t.join();  // does not hang: the death is seen within ~100 ms
  EXPECT_EQ(second.code(), absl::StatusCode::kAborted) << second;
  EXPECT_EQ(WaitChild(victim), -SIGKILL);
  EXPECT_TRUE(b->broken());
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(BarrierTest, SpawnedPartiesAttachByName) {
  absl::StatusOr<SharedObject<Barrier>> b = SharedObject<Barrier>::Create(3u);
  ASSERT_TRUE(b.ok()) << b.status();
  testing::LeakCheck leaks;
  auto h1 = sync_testing::StartHelper({"barrier-wait", b->name()});
  auto h2 = sync_testing::StartHelper({"barrier-wait", b->name()});
  absl::StatusOr<int> mine = (*b)->Wait(absl::Seconds(20));
  ASSERT_TRUE(mine.ok()) << mine.status();
  std::set<int> seen = {*mine};
  for (auto* h : {&h1, &h2}) {
    int i = -1;
    EXPECT_TRUE(absl::SimpleAtoi(h->ReadLine(), &i));
    seen.insert(i);
    EXPECT_EQ(WaitChild(h->pid), 0);
    h->out.reset();
  }
  EXPECT_EQ(seen, (std::set<int>{0, 1, 2}));
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace mp
