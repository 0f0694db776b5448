#include "ipc/internal/framing.h"

#include <signal.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/fd.h"
#include "process/leak_check.h"

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

}  // namespace
}  // namespace ipc_internal
}  // namespace mp
