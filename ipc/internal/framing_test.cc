#include "ipc/internal/framing.h"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/fd.h"
#include "process/leak_check.h"
#include "process/spin.h"

namespace mp {
namespace ipc_internal {
namespace {

std::string Header(uint64_t size) {
  char buf[kLongHeaderSize];
  return std::string(buf, EncodeFrameHeader(size, buf));
}

TEST(FramingTest, ShortHeaderIsBigEndianInt32) {
  EXPECT_EQ(Header(0), std::string("\0\0\0\0", 4));
  EXPECT_EQ(Header(0x01020304), "\x01\x02\x03\x04");
  EXPECT_EQ(Header(0x7fffffff), "\x7f\xff\xff\xff");
  EXPECT_EQ(*DecodeShortHeader("\x01\x02\x03\x04"), 0x01020304);
  EXPECT_EQ(*DecodeShortHeader("\x7f\xff\xff\xff"), 0x7fffffff);
}

TEST(FramingTest, LongHeaderIsMinusOneAndBigEndianUint64) {
  EXPECT_EQ(Header(0x80000000u),
            std::string("\xff\xff\xff\xff\0\0\0\0\x80\0\0\0", 12));
  const uint64_t kFiveGiB = uint64_t{5} << 30;
  std::string h = Header(kFiveGiB);
  ASSERT_EQ(h.size(), 12u);
  EXPECT_EQ(*DecodeShortHeader(h.data()), -1);
  EXPECT_EQ(DecodeLongSize(h.data() + 4), kFiveGiB);
  EXPECT_EQ(DecodeLongSize("\x01\x02\x03\x04\x05\x06\x07\x08"),
            0x0102030405060708u);
}

TEST(FramingTest, OtherNegativeSizesAreCorrupt) {
  EXPECT_EQ(DecodeShortHeader("\xff\xff\xff\xfe").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeShortHeader("\x80\0\0\0").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(FramingTest, WriteFrameThenReadFull) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<FdPair> p = MakeSocketPair();
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE(WriteFrame(p->write.get(), true, "hello").ok());
    char buf[9];
    ASSERT_TRUE(ReadFull(p->read.get(), buf, 9, true, absl::InfiniteFuture()).ok());
    EXPECT_EQ(std::string(buf, 9), std::string("\0\0\0\x05hello", 9));
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(FramingTest, WriteToClosedPipeIsOutOfRangeNotSigpipe) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<FdPair> p = MakePipe();
    ASSERT_TRUE(p.ok());
    p->read.reset();
    // SIGPIPE's default action would kill the test.
    absl::Status s = WriteFrame(p->write.get(), false, "x");
    EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
    sigset_t pending;
    sigpending(&pending);
    EXPECT_FALSE(sigismember(&pending, SIGPIPE));
  }
  {
    absl::StatusOr<FdPair> p = MakeSocketPair();
    ASSERT_TRUE(p.ok());
    p->read.reset();
    absl::Status s = WriteFrame(p->write.get(), true, "x");
    EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(FramingTest, ReadFullEofAndDeadline) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<FdPair> p = MakeSocketPair();
    ASSERT_TRUE(p.ok());
    char buf[8];
    absl::Time start = absl::Now();
    absl::Status s = ReadFull(p->read.get(), buf, 8, true,
                              absl::Now() + absl::Milliseconds(50));
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
    ASSERT_TRUE(WriteAll(p->write.get(), "abc").ok());
    p->write.reset();
    s = ReadFull(p->read.get(), buf, 8, true, absl::InfiniteFuture());
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    s = ReadFull(p->read.get(), buf, 8, true, absl::InfiniteFuture());
    EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ReadSpinTest, FailuresTurnItOffAndShortWaitsProbeAgain) {
  ReadSpin spin;
  spin.Set(40000);
  EXPECT_EQ(spin.budget_ns, 40000);
  spin.Spun(true);  // in time: stays at the maximum
  EXPECT_EQ(spin.budget_ns, 40000);
  spin.Slept(/*spun=*/true, 100000);  // ran out: / 4
  EXPECT_EQ(spin.budget_ns, 10000);
  spin.Spun(false);  // late (preempted): / 4
  EXPECT_EQ(spin.budget_ns, 2500);
  spin.Spun(true);  // in time: doubles
  EXPECT_EQ(spin.budget_ns, 5000);
  spin.Slept(true, 100000);
  spin.Slept(true, 100000);  // below 1 us: off
  EXPECT_EQ(spin.budget_ns, 0);
  EXPECT_EQ(spin.probe_after, 2 * ReadSpin::kFirstProbeAfter);
  // While off: short waits in a row turn it back on at max / 4; a long one
  // restarts the count.
  for (int i = 0; i < spin.probe_after - 1; ++i) spin.Slept(false, 1000);
  spin.Slept(false, 1000000);
  EXPECT_EQ(spin.budget_ns, 0);
  for (int i = 0; i < 2 * ReadSpin::kFirstProbeAfter - 1; ++i) {
    spin.Slept(false, 1000);
    EXPECT_EQ(spin.budget_ns, 0);
  }
  spin.Slept(false, 1000);
  EXPECT_EQ(spin.budget_ns, 10000);
  // A failed probe doubles the number of short waits before the next one.
  spin.Slept(true, 100000);
  spin.Slept(true, 100000);
  EXPECT_EQ(spin.budget_ns, 0);
  EXPECT_EQ(spin.probe_after, 4 * ReadSpin::kFirstProbeAfter);
  for (int i = 0; i < 20; ++i) {
    spin.Slept(false, 1000);
    if (spin.budget_ns != 0) {
      spin.Slept(true, 100000);
      spin.Slept(true, 100000);
    }
  }
  EXPECT_LE(spin.probe_after, ReadSpin::kMaxProbeAfter);
  // A probe that pays off resets the backoff.
  while (spin.budget_ns == 0) spin.Slept(false, 1000);
  spin.Spun(true);
  EXPECT_EQ(spin.probe_after, ReadSpin::kFirstProbeAfter);
  // Set() starts over; zero or negative disables.
  spin.Set(-5);
  EXPECT_EQ(spin.max_ns, 0);
  EXPECT_FALSE(spin.enabled());
}

TEST(ReadSpinTest, NeverSpinsWithOneCpu) {
  // In a child restricted to one CPU (so that the test keeps its mask).
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) _exit(2);
    // The child inherited its parent thread's cached answer: read again.
    process_internal::ForgetSpinAllowedForTesting();
    ReadSpin spin;
    spin.Set(50000);
    _exit(!spin.enabled() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  ReadSpin spin;
  spin.Set(50000);
  EXPECT_EQ(spin.enabled(), CPU_COUNT(&set) > 1);
}

TEST(ReadSpinTest, NeverSpinsWhileSpinningIsDisabledForTesting) {
  ReadSpin spin;
  spin.Set(50000);
  process_internal::SetSpinDisabledForTesting(true);
  EXPECT_FALSE(spin.enabled());
  process_internal::SetSpinDisabledForTesting(false);
  EXPECT_EQ(spin.enabled(), SpinAllowed());
}

TEST(ReadSpinTest, SpinningReadsGiveTheSameResultsOnSocketsAndPipes) {
  testing::LeakCheck leaks;
  for (bool socket : {true, false}) {
    SCOPED_TRACE(socket ? "socketpair" : "pipe");
    absl::StatusOr<FdPair> p = socket ? MakeSocketPair() : MakePipe();
    ASSERT_TRUE(p.ok());
    ReadSpin spin;
    spin.Set(10 * 1000 * 1000);  // 10 ms: longer than the deadlines below
    char buf[8];
    // Nothing comes: the deadline still wins over the spin budget.
    absl::Status s =
        ReadFull(p->read.get(), buf, 8, true,
                 absl::Now() + absl::Milliseconds(2), nullptr, socket, &spin);
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    ASSERT_TRUE(WriteAll(p->write.get(), "abcdefgh").ok());
    ASSERT_TRUE(ReadFull(p->read.get(), buf, 8, true, absl::InfiniteFuture(),
                         nullptr, socket, &spin)
                    .ok());
    EXPECT_EQ(std::string(buf, 8), "abcdefgh");
    ASSERT_TRUE(WriteAll(p->write.get(), "abc").ok());
    p->write.reset();
    size_t got = 0;
    s = ReadFull(p->read.get(), buf, 8, true, absl::InfiniteFuture(), &got,
                 socket, &spin);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_EQ(got, 3u);
    s = ReadFull(p->read.get(), buf, 8, true, absl::InfiniteFuture(), nullptr,
                 socket, &spin);
    EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

}  // namespace
}  // namespace ipc_internal
}  // namespace mp
