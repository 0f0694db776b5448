#include "pool/internal/result_ring.h"

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "process/leak_check.h"

namespace mp {
namespace pool_internal {
namespace {

std::string Fill(size_t n, char c) { return std::string(n, c); }

TEST(ResultRingTest, RecordsComeBackInOrderAndWrap) {
  absl::StatusOr<ResultRing> ring = ResultRing::Create(4096);
  ASSERT_TRUE(ring.ok()) << ring.status();
  ASSERT_EQ(ring->capacity(), 4096u);
  // 1500-byte records: the third does not fit before the end and wraps.
  for (int round = 0; round < 10; ++round) {
    RingRecord a, b;
    ASSERT_TRUE(ring->Put(Fill(1500, 'a' + round), &a));
    ASSERT_TRUE(ring->Put(Fill(1500, 'A' + round), &b));
    for (const RingRecord* r : {&a, &b}) {
      absl::StatusOr<absl::string_view> got = ring->Get(*r);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(*got, Fill(1500, (r == &a ? 'a' : 'A') + round));
      ring->Release(*r);
    }
  }
}

TEST(ResultRingTest, FullRingRefusesUntilReleased) {
  absl::StatusOr<ResultRing> ring = ResultRing::Create(4096);
  ASSERT_TRUE(ring.ok());
  RingRecord a, b, c;
  ASSERT_TRUE(ring->Put(Fill(3000, 'x'), &a));
  EXPECT_FALSE(ring->Put(Fill(2000, 'y'), &b));  // 1096 left
  EXPECT_FALSE(ring->Put(Fill(4097, 'z'), &c));  // larger than the ring
  EXPECT_FALSE(ring->Put("", &c));
  ASSERT_TRUE(ring->Put(Fill(1000, 'y'), &b));
  ASSERT_TRUE(ring->Get(a).ok());
  ring->Release(a);
  ASSERT_TRUE(ring->Put(Fill(2000, 'z'), &c));  // wraps to the start
  EXPECT_EQ(c.offset, 0u);
  EXPECT_EQ(*ring->Get(b), Fill(1000, 'y'));
  ring->Release(b);
  EXPECT_EQ(*ring->Get(c), Fill(2000, 'z'));
}

TEST(ResultRingTest, RefusesRecordsThatDoNotDescribeTheRing) {
  absl::StatusOr<ResultRing> ring = ResultRing::Create(4096);
  ASSERT_TRUE(ring.ok());
  RingRecord good;
  ASSERT_TRUE(ring->Put(Fill(100, 'g'), &good));
  const RingRecord bad[] = {
      {0, 0, 0},                // empty
      {4000, 200, 200},         // past the end of the ring
      {0, 5000, 5000},          // larger than the ring
      {10, 100, 100},           // offset does not match its end
      {0, 100, 100 + 4096 * 3}, // further ahead than one ring
      {~uint64_t{0}, 100, 100}, // offset overflow
  };
  for (const RingRecord& r : bad) {
    absl::StatusOr<absl::string_view> got = ring->Get(r);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss)
        << r.offset << " " << r.size << " " << r.end;
  }
  ASSERT_TRUE(ring->Get(good).ok());
  ring->Release(good);
  // Behind what was released: out of order.
  EXPECT_EQ(ring->Get(good).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ResultRingTest, RecordEncodingRoundTrips) {
  RingRecord r{1, 2, 0x0102030405060708u};
  char buf[RingRecord::kEncodedSize];
  r.EncodeTo(buf);
  RingRecord back = RingRecord::DecodeFrom(buf);
  EXPECT_EQ(back.offset, 1u);
  EXPECT_EQ(back.size, 2u);
  EXPECT_EQ(back.end, r.end);
}

// A forked producer and this process as consumer, through a mapping of the
// ring's fd (as a worker that was not forked would map it).
TEST(ResultRingTest, ProducerInAnotherProcess) {
  mp::testing::LeakCheck leaks;
  absl::StatusOr<ResultRing> ring = ResultRing::Create(1 << 16);
  ASSERT_TRUE(ring.ok());
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p[0]);
    absl::StatusOr<ResultRing> mine = ResultRing::Map(ring->fd());
    if (!mine.ok()) _exit(2);
    for (int i = 0; i < 100;) {
      RingRecord r;
      if (!mine->Put(Fill(10000 + i, static_cast<char>('0' + i % 10)), &r)) {
        usleep(100);  // the consumer has not released yet
        continue;
      }
      char buf[RingRecord::kEncodedSize];
      r.EncodeTo(buf);
      if (write(p[1], buf, sizeof buf) != sizeof buf) _exit(3);
      ++i;
    }
    _exit(0);
  }
  close(p[1]);
  for (int i = 0; i < 100; ++i) {
    char buf[RingRecord::kEncodedSize];
    ASSERT_EQ(read(p[0], buf, sizeof buf), static_cast<ssize_t>(sizeof buf));
    RingRecord r = RingRecord::DecodeFrom(buf);
    absl::StatusOr<absl::string_view> got = ring->Get(r);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, Fill(10000 + i, static_cast<char>('0' + i % 10)));
    ring->Release(r);
  }
  close(p[0]);
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  ring->CloseFd();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ResultRingTest, MapRefusesWhatIsNotARing) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_EQ(ResultRing::Map(p[0]).status().code(),
            absl::StatusCode::kInvalidArgument);
  close(p[0]);
  close(p[1]);
  EXPECT_FALSE(ResultRing::Map(-1).ok());
}

}  // namespace
}  // namespace pool_internal
}  // namespace mp
