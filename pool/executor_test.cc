#include "pool/executor.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <set>
#include <stdexcept>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"

namespace mp {
namespace {

int Square(int x) { return x * x; }
int SleepMs(int ms) {
  absl::SleepFor(absl::Milliseconds(ms));
  return ms;
}
int Fail(int x) {
  if (x < 0) throw std::invalid_argument("negative");
  return x;
}

TEST(ExecutorTest, SubmitAndResult) {
  testing::LeakCheck leaks;
  {
    ProcessPoolExecutor ex(2);
    ASSERT_TRUE(ex.status().ok());
    Future<int> f = ex.Submit(Square, 12);
    absl::StatusOr<int> v = f.Result(absl::Seconds(10));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, 144);
    EXPECT_TRUE(f.Done());
    EXPECT_FALSE(f.Running());
    EXPECT_FALSE(f.Cancelled());
    EXPECT_TRUE(f.Exception().ok());
    Future<int> bad = ex.Submit(Fail, -1);
    absl::Status e = bad.Exception();
    EXPECT_EQ(e.code(), absl::StatusCode::kUnknown);
    EXPECT_TRUE(absl::StrContains(e.message(), "std::invalid_argument: negative")) << e;
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ExecutorTest, CancelWhilePendingAndRunning) {
  ProcessPoolExecutor ex(1);
  Future<int> busy = ex.Submit(SleepMs, 300);
  // Fill the worker's in-flight window so later tasks stay pending.
  std::vector<Future<int>> queued;
  for (int i = 0; i < 40; ++i) queued.push_back(ex.Submit(SleepMs, 1));
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!busy.Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_TRUE(busy.Running());
  EXPECT_FALSE(busy.Cancel());
  Future<int> last = queued.back();
  EXPECT_TRUE(last.Cancel());
  EXPECT_TRUE(last.Cancelled());
  EXPECT_TRUE(last.Done());
  EXPECT_EQ(last.Result().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(*busy.Result(), 300);
}

TEST(ExecutorTest, AddDoneCallback) {
  ProcessPoolExecutor ex(1);
  std::atomic<int> calls{0};
  Future<int> f = ex.Submit(Square, 3);
  f.AddDoneCallback([&](const Future<int>& done) {
    if (done.Result().ok() && *done.Result() == 9) ++calls;
  });
  ASSERT_TRUE(f.Result().ok());
  f.AddDoneCallback([&](const Future<int>&) { ++calls; });  // runs now
  ex.Shutdown();
  EXPECT_EQ(calls.load(), 2);
}

TEST(ExecutorTest, MapWithTimeoutAndChunksize) {
  ProcessPoolExecutor ex(2);
  std::vector<int> xs = {1, 2, 3, 4, 5};
  auto r = ex.Map(Square, xs, absl::Seconds(30), 2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (std::vector<int>{1, 4, 9, 16, 25}));
  auto slow = ex.Map(SleepMs, std::vector<int>{2000, 2000}, absl::Milliseconds(50));
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ex.Map(Square, xs, absl::Seconds(1), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  ex.Shutdown(/*wait=*/true, /*cancel_futures=*/true);
}

TEST(ExecutorTest, AsCompletedAndWaitAll) {
  ProcessPoolExecutor ex(2);
  std::vector<Future<int>> fs = {ex.Submit(SleepMs, 400), ex.Submit(SleepMs, 10),
                                 ex.Submit(SleepMs, 20)};
  DoneAndNotDone first = WaitAll(fs, absl::Seconds(10), ReturnWhen::kFirstCompleted);
  EXPECT_GE(first.done.size(), 1u);
  std::set<int> seen;
  AsCompleted<int> it(fs, absl::Seconds(30));
  while (auto f = it.Next()) {
    ASSERT_TRUE(f->ok()) << f->status();
    seen.insert(*(*f)->Result());
  }
  EXPECT_EQ(seen, (std::set<int>{10, 20, 400}));
  DoneAndNotDone all = WaitAll(fs);
  EXPECT_EQ(all.done.size(), 3u);
  EXPECT_TRUE(all.not_done.empty());
  std::vector<Future<int>> slow = {ex.Submit(SleepMs, 1500)};
  AsCompleted<int> timed(slow, absl::Milliseconds(20));
  auto t = timed.Next();
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->status().code(), absl::StatusCode::kDeadlineExceeded);
  DoneAndNotDone none = WaitAll(slow, absl::Milliseconds(10));
  EXPECT_EQ(none.not_done.size(), 1u);
  std::vector<Future<int>> mixed = {ex.Submit(Fail, -1), ex.Submit(SleepMs, 1500)};
  DoneAndNotDone exc = WaitAll(mixed, absl::Seconds(10), ReturnWhen::kFirstException);
  EXPECT_EQ(exc.done, (std::vector<size_t>{0}));
  ex.Shutdown(true, true);
}

TEST(ExecutorTest, ShutdownCancelsPendingAndRefusesNewWork) {
  testing::LeakCheck leaks;
  {
    ProcessPoolExecutor ex(1);
    std::vector<Future<int>> fs;
    for (int i = 0; i < 60; ++i) fs.push_back(ex.Submit(SleepMs, 20));
    absl::Time start = absl::Now();
    ex.Shutdown(/*wait=*/true, /*cancel_futures=*/true);
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
    int cancelled = 0;
    for (auto& f : fs) {
      ASSERT_TRUE(f.Done());
      cancelled += f.Cancelled() ? 1 : 0;
    }
    EXPECT_GT(cancelled, 0);
    Future<int> late = ex.Submit(Square, 2);
    EXPECT_EQ(late.Result().status().code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ExecutorTest, WorkerDeathFailsOnlyItsFuture) {
  ProcessPoolExecutor ex(2);
  Future<int> dies = ex.Submit([](int x) {
    raise(SIGKILL);
    return x;
  }, 1);
  Future<int> fine = ex.Submit(Square, 5);
  absl::Status s = dies.Exception(absl::Seconds(10));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "signal 9")) << s;
  EXPECT_EQ(*fine.Result(absl::Seconds(10)), 25);
  EXPECT_EQ(*ex.Submit(Square, 6).Result(absl::Seconds(10)), 36);
}

TEST(ExecutorTest, InitializerFailureFailsFutures) {
  ProcessPoolExecutor ex(1, [] { return absl::UnavailableError("no gpu"); });
  Future<int> f = ex.Submit(Square, 2);
  absl::Status s = f.Exception(absl::Seconds(10));
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(absl::StrContains(s.message(), "no gpu")) << s;
}

}  // namespace
}  // namespace mp
