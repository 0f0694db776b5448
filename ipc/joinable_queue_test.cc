#include "ipc/joinable_queue.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ipc/internal/queue_ring.h"
#include "process/fd.h"
#include "process/leak_check.h"
#include "process/process.h"

namespace mp {
namespace {

using testing::LeakCheck;

std::string Prefix() { return absl::StrCat("mpjq", getpid(), "_"); }

QueueOptions Options() {
  static std::atomic<int> n{0};
  QueueOptions o;
  o.capacity = 1 << 14;
  o.name = absl::StrCat(Prefix(), n++);
  return o;
}

JoinableQueue<int> Make() {
  absl::StatusOr<JoinableQueue<int>> q = JoinableQueue<int>::Create(Options());
  EXPECT_TRUE(q.ok()) << q.status();
  return *std::move(q);
}

TEST(JoinableQueueTest, CountsUnfinishedTasks) {
  JoinableQueue<int> q = Make();
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_TRUE(q.Join(absl::ZeroDuration()).ok());  // nothing put
  ASSERT_TRUE(q.Put(1).ok());
  ASSERT_TRUE(q.Put(2).ok());
  EXPECT_EQ(q.unfinished_tasks(), 2u);
  EXPECT_EQ(*q.Get(), 1);
  EXPECT_EQ(q.unfinished_tasks(), 2u);  // got is not done
  ASSERT_TRUE(q.TaskDone().ok());
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  EXPECT_EQ(q.Join(absl::Milliseconds(20)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(*q.Get(), 2);
  ASSERT_TRUE(q.TaskDone().ok());
  EXPECT_TRUE(q.Join(absl::ZeroDuration()).ok());
}

TEST(JoinableQueueTest, TaskDoneTooOftenIsAnError) {
  JoinableQueue<int> q = Make();
  absl::Status s = q.TaskDone();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  ASSERT_TRUE(q.Put(1).ok());
  EXPECT_TRUE(q.TaskDone().ok());
  EXPECT_EQ(q.TaskDone().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
}

TEST(JoinableQueueTest, EmptyHandleFailsCleanly) {
  JoinableQueue<int> q;
  EXPECT_EQ(q.TaskDone().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(q.Join().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
}

TEST(JoinableQueueTest, JoinWaitsForConsumersInOtherProcesses) {
  LeakCheck leaks(Prefix());
  {
    JoinableQueue<int> q = Make();
    constexpr int kN = 200;
    std::vector<Process> workers;
    for (int w = 0; w < 2; ++w) {
      workers.emplace_back([q]() mutable {
        for (;;) {
          absl::StatusOr<int> v = q.Get(absl::Seconds(20));
          if (!v.ok()) return 1;
          const bool stop = *v < 0;
          if (!q.TaskDone().ok()) return 2;
          if (stop) return 0;
        }
      });
      ASSERT_TRUE(workers.back().Start().ok());
    }
    for (int i = 0; i < kN; ++i) ASSERT_TRUE(q.Put(i).ok());
    ASSERT_TRUE(q.Join(absl::Seconds(30)).ok());
    EXPECT_EQ(q.unfinished_tasks(), 0u);
    EXPECT_TRUE(q.Empty());
    for (int w = 0; w < 2; ++w) ASSERT_TRUE(q.Put(-1).ok());
    ASSERT_TRUE(q.Join(absl::Seconds(30)).ok());
    for (Process& p : workers) {
      ASSERT_TRUE(p.Join(absl::Seconds(30)).ok());
      EXPECT_EQ(p.exitcode(), 0);
    }
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

int SpawnedWorker(JoinableQueue<int> q, int n) {
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<int> v = q.Get(absl::Seconds(20));
    if (!v.ok() || !q.TaskDone().ok()) return 1;
  }
  return 0;
}
MP_REGISTER(SpawnedWorker);

TEST(JoinableQueueTest, SpawnedWorkerGetsTheHandleAsAnArgument) {
  LeakCheck leaks(Prefix());
  {
    JoinableQueue<int> q = Make();
    ProcessOptions po;
    po.start_method = StartMethod::kSpawn;
    Process p(po, SpawnedWorker, q, 50);
    ASSERT_TRUE(p.Start().ok());
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(q.Put(i).ok());
    ASSERT_TRUE(q.Join(absl::Seconds(30)).ok());
    ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());
    EXPECT_EQ(p.exitcode(), 0);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

int g_fd = -1;
void PauseAfterTaking(ipc_internal::QueueHookPoint p) {
  if (p != ipc_internal::QueueHookPoint::kGetAfterPublish) return;
  (void)!write(g_fd, "h", 1);
  for (;;) pause();
}

TEST(JoinableQueueTest, ValueLostWithAKilledConsumerCountsAsDone) {
  LeakCheck leaks(Prefix());
  {
    JoinableQueue<int> q = Make();
    ASSERT_TRUE(q.Put(1).ok());
    absl::StatusOr<FdPair> pipe = MakePipe();
    ASSERT_TRUE(pipe.ok());
    const int wfd = pipe->write.get();
    Process p([q, wfd]() mutable {
      g_fd = wfd;
      ipc_internal::SetQueueTestHook(PauseAfterTaking);
      (void)q.Get();
      return 3;
    });
    ASSERT_TRUE(p.Start().ok());
    pipe->write.reset();
    absl::StatusOr<bool> ready =
        WaitReadable(pipe->read.get(), absl::Seconds(20));
    ASSERT_TRUE(ready.ok() && *ready);
    ASSERT_TRUE(p.Kill().ok());
    ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());
    // The repair happens when the next process takes the get lock.
    EXPECT_EQ(q.GetNoWait().status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(q.lost(), 1u);
    EXPECT_TRUE(q.Join(absl::Seconds(10)).ok());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace mp
