#include "ipc/wait.h"

#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ipc/connection.h"
#include "process/leak_check.h"

namespace mp {
namespace {

TEST(WaitTest, ReturnsReadyConnectionsAndFds) {
  testing::LeakCheck leaks;
  {
    auto p1 = Pipe();
    auto p2 = Pipe(false);
    auto p3 = Pipe();
    ASSERT_TRUE(p1.ok() && p2.ok() && p3.ok());
    std::vector<WaitObject> objects = {&p1->second, p2->first,
                                       p3->second.fileno()};
    absl::StatusOr<std::vector<size_t>> ready = Wait(objects, absl::ZeroDuration());
    ASSERT_TRUE(ready.ok());
    EXPECT_TRUE(ready->empty());
    ASSERT_TRUE(p2->second.SendBytes("x").ok());
    ASSERT_TRUE(p3->first.SendBytes("y").ok());
    ready = Wait(objects, absl::Seconds(10));
    ASSERT_TRUE(ready.ok());
    EXPECT_EQ(*ready, (std::vector<size_t>{1, 2}));
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(WaitTest, ConnectionWithReadAheadBytesIsReady) {
  auto p = Pipe();
  auto idle = Pipe();
  ASSERT_TRUE(p.ok() && idle.ok());
  ASSERT_TRUE(p->first.SendBytes("a").ok());
  ASSERT_TRUE(p->first.SendBytes("b").ok());
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(*p->second.RecvBytes(), "a");  // "b" is read ahead
  ASSERT_GT(p->second.buffered(), 0u);
  absl::StatusOr<std::vector<size_t>> ready =
      Wait({WaitObject(idle->first), WaitObject(p->second)}, absl::Seconds(10));
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(*ready, (std::vector<size_t>{1}));
}

TEST(WaitTest, TimeoutReturnsEmpty) {
  auto p = Pipe();
  ASSERT_TRUE(p.ok());
  absl::Time start = absl::Now();
  absl::StatusOr<std::vector<size_t>> ready =
      Wait({WaitObject(p->first)}, absl::Milliseconds(50));
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(ready->empty());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(45));
}

TEST(WaitTest, ProcessSentinelBecomesReadyWhenTheProcessExits) {
  testing::LeakCheck leaks;
  {
    // A sentinel is the read end of a pipe whose write end only the child
    // holds (what Process::sentinel() returns).
    auto sentinel = Pipe(false);
    auto idle = Pipe();
    ASSERT_TRUE(sentinel.ok() && idle.ok());
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      absl::SleepFor(absl::Milliseconds(50));
      _exit(0);
    }
    ASSERT_TRUE(sentinel->second.Close().ok());
    absl::StatusOr<std::vector<size_t>> ready =
        Wait({WaitObject(idle->first), WaitObject(sentinel->first.fileno())},
             absl::Seconds(10));
    ASSERT_TRUE(ready.ok());
    EXPECT_EQ(*ready, (std::vector<size_t>{1}));
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(WaitTest, ClosedConnectionOrBadFdIsInvalidArgument) {
  Connection closed;
  EXPECT_EQ(Wait({WaitObject(closed)}, absl::ZeroDuration()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Wait({WaitObject(-3)}, absl::ZeroDuration()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Wait({WaitObject(987654)}, absl::ZeroDuration()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mp
