#include "pool/internal/core.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "ipc/codec.h"
#include "pool/internal/fake_transport.h"
#include "pool/internal/typed.h"
#include "process/internal/test_util.h"

namespace mp {
namespace pool_internal {
namespace {

// Collects what Done callbacks receive.
struct Sink {
  std::mutex mu;
  std::condition_variable cv;
  std::map<int, absl::StatusOr<std::string>> got;

  Core::Done For(int key) {
    return [this, key](absl::StatusOr<std::string> r) {
      std::lock_guard<std::mutex> lock(mu);
      got.emplace(key, std::move(r));
      cv.notify_all();
    };
  }
  absl::StatusOr<std::string> Wait(int key) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return got.count(key) > 0; });
    if (!got.count(key)) return absl::DeadlineExceededError("no result");
    return got.at(key);
  }
};

class CoreTest : public ::testing::Test {
 protected:
  void Make(CoreOptions options, bool auto_run = false, int fail_starts = 0) {
    auto table = std::make_unique<FunctionTable>();
    table_ = table.get();
    table->Add(std::make_shared<CallRunner<int (*)(int), int, false>>(
        [](int x) { return x * 10; }));
    auto fake = std::make_unique<FakeTransport>(table.get(), auto_run);
    fake_ = fake.get();
    fake_->FailNextStarts(fail_starts);
    core_ = std::make_unique<Core>(options, std::move(table), std::move(fake));
    start_ = core_->Start();
  }
  Core::TaskSpec Spec(int key, int64_t base = 0, uint32_t fn = 0) {
    Core::TaskSpec s;
    s.function = fn;
    s.payload = "p" + std::to_string(key);
    s.base_index = base;
    s.done = sink_.For(key);
    return s;
  }
  std::vector<uint64_t> Submit(std::vector<Core::TaskSpec> specs) {
    auto ids = core_->Submit(std::move(specs));
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *ids : std::vector<uint64_t>{};
  }

  Sink sink_;  // outlives core_, whose Terminate() calls into it
  FunctionTable* table_ = nullptr;
  FakeTransport* fake_ = nullptr;
  std::unique_ptr<Core> core_;
  absl::Status start_;
};

TEST_F(CoreTest, DeliversResultBytes) {
  Make({.processes = 2});
  ASSERT_TRUE(start_.ok());
  std::vector<Core::TaskSpec> specs;
  specs.push_back(Spec(1));
  specs.push_back(Spec(2));
  Submit(std::move(specs));
  auto sent = fake_->WaitSent(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_NE(sent[0].worker, sent[1].worker);  // spread over the workers
  fake_->Complete(sent[1], "two");
  fake_->Complete(sent[0], "one");
  EXPECT_EQ(*sink_.Wait(1), "one");
  EXPECT_EQ(*sink_.Wait(2), "two");
}

TEST_F(CoreTest, BoundedInFlightPerWorker) {
  Make({.processes = 1, .max_inflight_per_worker = 3});
  std::vector<Core::TaskSpec> specs;
  for (int i = 0; i < 10; ++i) specs.push_back(Spec(i));
  Submit(std::move(specs));
  auto sent = fake_->WaitSent(3);
  ASSERT_EQ(sent.size(), 3u);
  fake_->Complete(sent[0], "x");
  auto more = fake_->WaitSent(1);
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].payload, "p3");  // FIFO
}

TEST_F(CoreTest, LostWorkerFailsTheRunningTaskAndRequeuesTheRest) {
  Make({.processes = 1});
  std::vector<Core::TaskSpec> specs;
  specs.push_back(Spec(1, 10));
  specs.push_back(Spec(2, 11));
  specs.push_back(Spec(3, 12));
  Submit(std::move(specs));
  auto sent = fake_->WaitSent(3);
  ASSERT_EQ(sent.size(), 3u);
  fake_->Complete(sent[0], "one");
  // Dies while running the second; the third never started.
  fake_->Die(sent[0].worker, "worker lost: pid 1001 was killed by signal 9",
             sent[1].task_id);
  absl::StatusOr<std::string> lost = sink_.Wait(2);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(lost.status().message(), "task 11 lost"))
      << lost.status();
  EXPECT_TRUE(absl::StrContains(lost.status().message(), "signal 9"));
  // The third goes to the replacement worker.
  auto resent = fake_->WaitSent(1);
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].payload, "p3");
  EXPECT_NE(resent[0].worker, sent[0].worker);
  fake_->Complete(resent[0], "three");
  EXPECT_EQ(*sink_.Wait(3), "three");
  EXPECT_EQ(fake_->started(), 2);
}

// A lost worker's task is reported at once, not after its replacement has
// started (a spawn worker can take long to start and connect back).
TEST_F(CoreTest, LostTaskIsReportedBeforeTheReplacementStarts) {
  Make({.processes = 1});
  Submit({Spec(1), Spec(2)});
  auto sent = fake_->WaitSent(2);
  ASSERT_EQ(sent.size(), 2u);
  fake_->HoldStarts();
  fake_->Die(sent[0].worker, "worker lost: pid 1001 was killed by signal 9",
             sent[0].task_id);
  absl::StatusOr<std::string> lost = sink_.Wait(1);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  // The replacement's start, held until now, then goes on.
  ASSERT_TRUE(
      testing::Eventually([&] { return fake_->starts_waiting() == 1; }));
  fake_->ReleaseStarts();
  auto resent = fake_->WaitSent(1);
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].payload, "p2");
  fake_->Complete(resent[0], "two");
  EXPECT_EQ(*sink_.Wait(2), "two");
}

TEST_F(CoreTest, UnknownRunningTaskBlamesTheFirstHeld) {
  Make({.processes = 1});
  std::vector<Core::TaskSpec> specs;
  specs.push_back(Spec(1));
  specs.push_back(Spec(2));
  Submit(std::move(specs));
  auto sent = fake_->WaitSent(2);
  fake_->Die(sent[0].worker, "worker lost: gone");
  EXPECT_FALSE(sink_.Wait(1).ok());
  auto resent = fake_->WaitSent(1);
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].payload, "p2");
}

TEST_F(CoreTest, DeathBetweenTasksBlamesNoTask) {
  Make({.processes = 1});
  Submit({Spec(1), Spec(2)});
  auto sent = fake_->WaitSent(2);
  ASSERT_EQ(sent.size(), 2u);
  fake_->Die(sent[0].worker, "worker lost: killed while idle", 0,
             /*running_known=*/true);
  auto resent = fake_->WaitSent(2);
  ASSERT_EQ(resent.size(), 2u);
  EXPECT_EQ(resent[0].payload, "p1");
  EXPECT_EQ(resent[1].payload, "p2");
  fake_->Complete(resent[0], "a");
  fake_->Complete(resent[1], "b");
  EXPECT_EQ(*sink_.Wait(1), "a");
  EXPECT_EQ(*sink_.Wait(2), "b");
}

TEST_F(CoreTest, RetriesALostTask) {
  Make({.processes = 1, .retries = 1});
  std::vector<Core::TaskSpec> specs;
  specs.push_back(Spec(1));
  Submit(std::move(specs));
  auto sent = fake_->WaitSent(1);
  fake_->Die(sent[0].worker, "worker lost: a", sent[0].task_id);
  auto again = fake_->WaitSent(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].task_id, sent[0].task_id);
  fake_->Die(again[0].worker, "worker lost: b", again[0].task_id);
  absl::StatusOr<std::string> r = sink_.Wait(1);
  ASSERT_FALSE(r.ok());  // out of retries
  EXPECT_TRUE(absl::StrContains(r.status().message(), "worker lost: b"));
}

TEST_F(CoreTest, TaskFailureBecomesStatusWithIndex) {
  Make({.processes = 1});
  std::vector<Core::TaskSpec> specs;
  specs.push_back(Spec(1, 100));
  Submit(std::move(specs));
  auto sent = fake_->WaitSent(1);
  TaskFailure f;
  f.offset = 2;
  f.type = "std::out_of_range";
  f.message = "vector::at";
  f.pid = 4242;
  fake_->Complete(sent[0], Encode(f), /*ok=*/false);
  absl::StatusOr<std::string> r = sink_.Wait(1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(r.status().message(),
            "task 102 failed in worker pid 4242: std::out_of_range: vector::at");
  // Garbage failure bytes: a clear kDataLoss, no crash.
  std::vector<Core::TaskSpec> more;
  more.push_back(Spec(2, 7));
  Submit(std::move(more));
  auto s2 = fake_->WaitSent(1);
  fake_->Complete(s2[0], "garbage", /*ok=*/false);
  EXPECT_EQ(sink_.Wait(2).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(CoreTest, InitializerFailureBreaksThePool) {
  Make({.processes = 2});
  std::vector<Core::TaskSpec> specs;
  specs.push_back(Spec(1));
  specs.push_back(Spec(2));
  specs.push_back(Spec(3));
  Submit(std::move(specs));
  auto sent = fake_->WaitSent(1);
  fake_->FailInit(sent[0].worker, "cannot open db");
  for (int k : {1, 2, 3}) {
    absl::StatusOr<std::string> r = sink_.Wait(k);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
    EXPECT_TRUE(absl::StrContains(r.status().message(), "cannot open db"));
  }
  auto later = core_->Submit({});
  // An empty submit still reports the broken pool.
  EXPECT_EQ(later.status().code(), absl::StatusCode::kAborted);
  core_->Close();
  EXPECT_TRUE(core_->Join().ok());
}

TEST_F(CoreTest, MaxTasksPerChildRetiresAndReplaces) {
  Make({.processes = 1, .max_tasks_per_child = 2});
  std::vector<Core::TaskSpec> specs;
  for (int i = 0; i < 3; ++i) specs.push_back(Spec(i));
  Submit(std::move(specs));
  auto first = fake_->WaitSent(2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].worker, first[1].worker);
  fake_->Complete(first[0], "a");
  fake_->Complete(first[1], "b");
  auto third = fake_->WaitSent(1);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_NE(third[0].worker, first[0].worker);
  std::vector<WorkerId> stopped = fake_->stopped();
  ASSERT_EQ(stopped.size(), 1u);
  EXPECT_EQ(stopped[0], first[0].worker);
}

TEST_F(CoreTest, CancelOnlyWhilePending) {
  Make({.processes = 1, .max_inflight_per_worker = 1});
  std::vector<Core::TaskSpec> specs;
  specs.push_back(Spec(1));
  specs.push_back(Spec(2));
  auto ids = Submit(std::move(specs));
  auto sent = fake_->WaitSent(1);
  EXPECT_TRUE(core_->IsSent(ids[0]));
  EXPECT_FALSE(core_->IsSent(ids[1]));
  EXPECT_FALSE(core_->Cancel(ids[0]));
  EXPECT_TRUE(core_->Cancel(ids[1]));
  EXPECT_EQ(sink_.Wait(2).status().code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(core_->Cancel(ids[1]));
}

TEST_F(CoreTest, TerminateCancelsEverything) {
  Make({.processes = 1});
  std::vector<Core::TaskSpec> specs;
  specs.push_back(Spec(1));
  specs.push_back(Spec(2));
  Submit(std::move(specs));
  fake_->WaitSent(2);
  core_->Terminate();
  EXPECT_EQ(sink_.Wait(1).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(sink_.Wait(2).status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(core_->Join().ok());
  EXPECT_TRUE(fake_->LiveWorkers().empty());
}

TEST_F(CoreTest, CloseFinishesWorkThenStopsWorkers) {
  Make({.processes = 2});
  EXPECT_EQ(core_->Join().code(), absl::StatusCode::kFailedPrecondition);
  std::vector<Core::TaskSpec> specs;
  specs.push_back(Spec(1));
  Submit(std::move(specs));
  core_->Close();
  EXPECT_EQ(core_->Submit({}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto sent = fake_->WaitSent(1);
  fake_->Complete(sent[0], "done");
  EXPECT_TRUE(core_->Join().ok());
  EXPECT_EQ(*sink_.Wait(1), "done");
  EXPECT_TRUE(fake_->LiveWorkers().empty());
}

TEST_F(CoreTest, NewFunctionReplacesIdleStaleWorkers) {
  Make({.processes = 1});
  std::vector<Core::TaskSpec> specs;
  specs.push_back(Spec(1));
  Submit(std::move(specs));
  auto sent = fake_->WaitSent(1);
  fake_->Complete(sent[0], "a");
  ASSERT_TRUE(sink_.Wait(1).ok());
  uint32_t fn = core_->AddFunction(
      std::make_shared<CallRunner<int (*)(int), int, false>>(
          [](int x) { return x; }),
      {nullptr, 0});
  EXPECT_EQ(fn, 1u);
  std::vector<Core::TaskSpec> more;
  more.push_back(Spec(2, 0, fn));
  Submit(std::move(more));
  auto s2 = fake_->WaitSent(1);
  ASSERT_EQ(s2.size(), 1u);
  EXPECT_NE(s2[0].worker, sent[0].worker);  // a fresh worker knows `fn`
  EXPECT_EQ(fake_->started(), 2);
}

TEST_F(CoreTest, NewFunctionBehindOldOnesDoesNotBlock) {
  Make({.processes = 1});
  uint32_t fn = core_->AddFunction(
      std::make_shared<CallRunner<int (*)(int), int, false>>(
          [](int x) { return x; }),
      {nullptr, 0});
  // Queued: a task for the new function, then one for the old.
  Submit({Spec(1, 0, fn), Spec(2, 0, 0)});
  auto sent = fake_->WaitSent(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].payload, "p1");
}

TEST_F(CoreTest, OversizedPayloadIsInvalidArgument) {
  Make({.processes = 1});
  Core::TaskSpec big = Spec(1, 4);
  big.payload.assign((1 << 20) + 1, 'x');
  absl::StatusOr<std::vector<uint64_t>> r = core_->Submit({std::move(big)});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "task 4")) << r.status();
}

TEST_F(CoreTest, UnknownFunctionIsInvalidArgument) {
  Make({.processes = 1});
  EXPECT_EQ(core_->Submit({Spec(1, 0, 99)}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CoreTest, StartFailureIsReported) {
  Make({.processes = 2}, false, /*fail_starts=*/5);
  EXPECT_EQ(start_.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(core_->Submit({Spec(1)}).ok());
}

TEST_F(CoreTest, AutoRunExecutesTheRunner) {
  Make({.processes = 2}, /*auto_run=*/true);
  Core::TaskSpec s;
  s.function = 0;
  s.payload = Encode(std::vector<int>{1, 2, 3});
  s.done = sink_.For(1);
  Submit({std::move(s)});
  absl::StatusOr<std::string> r = sink_.Wait(1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*Decode<std::vector<int>>(*r), (std::vector<int>{10, 20, 30}));
  // Bad argument bytes: the runner reports a decode failure.
  Core::TaskSpec bad;
  bad.function = 0;
  bad.payload = "not codec bytes";
  bad.base_index = 3;
  bad.done = sink_.For(2);
  Submit({std::move(bad)});
  absl::StatusOr<std::string> b = sink_.Wait(2);
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(absl::StrContains(b.status().message(), "cannot decode the arguments"))
      << b.status();
}

}  // namespace
}  // namespace pool_internal
}  // namespace mp
