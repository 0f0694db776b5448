#include "ipc/simple_queue.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ipc/codec.h"
#include "process/leak_check.h"
#include "process/process.h"

namespace mp {
namespace {

int SpawnedEcho(SimpleQueue<std::string> in, SimpleQueue<std::string> out) {
  for (;;) {
    absl::StatusOr<std::string> s = in.Get();
    if (!s.ok()) return 1;
    if (s->empty()) return 0;
    if (!out.Put(absl::StrCat("echo:", *s)).ok()) return 2;
  }
}
MP_REGISTER(SpawnedEcho);

TEST(SimpleQueueTest, PutGetEmptyClose) {
  absl::StatusOr<SimpleQueue<std::string>> q = SimpleQueue<std::string>::Create();
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_TRUE(q->Empty());
  ASSERT_TRUE(q->Put("a").ok());
  EXPECT_FALSE(q->Empty());
  EXPECT_EQ(*q->Get(), "a");
  q->Close();
  EXPECT_EQ(q->Put("b").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(q->Get().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SimpleQueueTest, CreateRejectsAMaxsize) {
  QueueOptions o;
  o.maxsize = 3;
  EXPECT_EQ(SimpleQueue<int>::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SimpleQueueTest, EmptyHandleFailsCleanly) {
  SimpleQueue<int> q;
  EXPECT_EQ(q.Put(1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(q.Empty());
}

TEST(SimpleQueueTest, EchoThroughASpawnedChild) {
  const std::string prefix = absl::StrCat("mpsq", getpid(), "_");
  testing::LeakCheck leaks(prefix);
  {
    QueueOptions o;
    o.capacity = 4096;
    o.name = prefix + "in";
    absl::StatusOr<SimpleQueue<std::string>> in =
        SimpleQueue<std::string>::Create(o);
    o.name = prefix + "out";
    absl::StatusOr<SimpleQueue<std::string>> out =
        SimpleQueue<std::string>::Create(o);
    ASSERT_TRUE(in.ok() && out.ok());
    ProcessOptions po;
    po.start_method = StartMethod::kSpawn;
    Process p(po, SpawnedEcho, *in, *out);
    ASSERT_TRUE(p.Start().ok());
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(in->Put(std::string(i * 50 + 1, 'x')).ok());
      absl::StatusOr<std::string> r = out->Get();
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(*r, "echo:" + std::string(i * 50 + 1, 'x'));
    }
    ASSERT_TRUE(in->Put("").ok());
    ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());
    EXPECT_EQ(p.exitcode(), 0);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace mp
