#include "ipc/connection.h"

#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ipc/internal/framing.h"
#include "process/fd.h"
#include "process/leak_check.h"

namespace mp {
namespace {

struct Job {
  int id = 0;
  std::vector<double> data;
  std::map<std::string, int> tags;
  MP_CODEC_FIELDS(id, data, tags);
};

std::pair<Connection, Connection> MakePipe(bool duplex = true) {
  absl::StatusOr<std::pair<Connection, Connection>> p = Pipe(duplex);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

TEST(ConnectionTest, SendBytesRecvBytesBothWays) {
  testing::LeakCheck leaks;
  {
    auto [a, b] = MakePipe();
    EXPECT_TRUE(a.readable() && a.writable() && b.readable() && b.writable());
    ASSERT_TRUE(a.SendBytes("hello").ok());
    ASSERT_TRUE(a.SendBytes("").ok());
    EXPECT_EQ(*b.RecvBytes(), "hello");
    EXPECT_EQ(*b.RecvBytes(), "");
    ASSERT_TRUE(b.SendBytes("0123456789", 2, 3).ok());
    ASSERT_TRUE(b.SendBytes("0123456789", 7).ok());
    EXPECT_EQ(*a.RecvBytes(), "234");
    EXPECT_EQ(*a.RecvBytes(), "789");
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionTest, WireFormatIsCPythons) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.SendBytes("abc").ok());
  UniqueFd raw = b.Release();
  char buf[7];
  ASSERT_TRUE(ReadExact(raw.get(), buf, 7).ok());
  EXPECT_EQ(std::string(buf, 7), std::string("\0\0\0\x03" "abc", 7));
}

TEST(ConnectionTest, SendBytesRejectsBadOffsetAndSize) {
  auto [a, b] = MakePipe();
  EXPECT_EQ(a.SendBytes("abc", 4).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.SendBytes("abc", 1, 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(a.SendBytes("abc", 3).ok());  // empty tail is fine
  EXPECT_EQ(*b.RecvBytes(), "");
}

TEST(ConnectionTest, TypedSendRecv) {
  testing::LeakCheck leaks;
  {
    auto [a, b] = MakePipe();
    Job job;
    job.id = 7;
    job.data = {1.5, 2.5};
    job.tags = {{"x", 1}};
    ASSERT_TRUE(a.Send(job).ok());
    ASSERT_TRUE(a.Send(std::string("after")).ok());
    absl::StatusOr<Job> got = b.Recv<Job>();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->id, 7);
    EXPECT_EQ(got->data, job.data);
    EXPECT_EQ(got->tags, job.tags);
    EXPECT_EQ(*b.Recv<std::string>(), "after");
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionTest, GarbageInsteadOfCodecValueIsAnErrorAndConsumed) {
  testing::LeakCheck leaks;
  {
    auto [a, b] = MakePipe();
    ASSERT_TRUE(a.SendBytes("definitely not a codec message").ok());
    ASSERT_TRUE(a.Send(int64_t{5}).ok());
    ASSERT_TRUE(a.Send(int64_t{6}).ok());
    EXPECT_EQ(b.Recv<int64_t>().status().code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(b.Recv<int32_t>().status().code(),
              absl::StatusCode::kInvalidArgument);  // wrong type
    EXPECT_EQ(*b.Recv<int64_t>(), 6);
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionTest, SimplexPipeDirections) {
  testing::LeakCheck leaks;
  {
    auto [r, w] = MakePipe(/*duplex=*/false);
    EXPECT_TRUE(r.readable());
    EXPECT_FALSE(r.writable());
    EXPECT_FALSE(w.readable());
    EXPECT_TRUE(w.writable());
    EXPECT_EQ(r.SendBytes("x").code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(w.RecvBytes().status().code(),
              absl::StatusCode::kFailedPrecondition);
    ASSERT_TRUE(w.Send(std::vector<int>{1, 2}).ok());
    EXPECT_EQ(*r.Recv<std::vector<int>>(), (std::vector<int>{1, 2}));
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionTest, PeerClosedIsEndOfFile) {
  testing::LeakCheck leaks;
  for (bool duplex : {true, false}) {
    auto [r, w] = MakePipe(duplex);
    ASSERT_TRUE(w.SendBytes("last").ok());
    ASSERT_TRUE(w.Close().ok());
    EXPECT_EQ(*r.RecvBytes(), "last");
    absl::StatusOr<std::string> eof = r.RecvBytes();
    EXPECT_EQ(eof.status().code(), absl::StatusCode::kOutOfRange) << eof.status();
    // EOF does not break the connection: it stays at EOF.
    EXPECT_EQ(r.RecvBytes().status().code(), absl::StatusCode::kOutOfRange);
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionTest, SendToClosedPeerIsOutOfRangeWithoutSigpipe) {
  testing::LeakCheck leaks;
  for (bool duplex : {true, false}) {
    auto [r, w] = MakePipe(duplex);
    ASSERT_TRUE(r.Close().ok());
    absl::Status s = w.SendBytes("x");
    EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionTest, ClosedConnectionIsFailedPrecondition) {
  auto [a, b] = MakePipe();
  ASSERT_TRUE(a.Close().ok());
  EXPECT_TRUE(a.Close().ok());
  EXPECT_TRUE(a.closed());
  EXPECT_EQ(a.fileno(), -1);
  EXPECT_EQ(a.SendBytes("x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(a.RecvBytes().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(a.Poll().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ConnectionTest, MaxLengthExceededMarksUnreadable) {
  testing::LeakCheck leaks;
  {
    auto [a, b] = MakePipe();
    ASSERT_TRUE(a.SendBytes(std::string(100, 'x')).ok());
    absl::StatusOr<std::string> m = b.RecvBytes(10);
    EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted) << m.status();
    EXPECT_FALSE(b.readable());
    EXPECT_TRUE(b.writable());
    EXPECT_EQ(b.RecvBytes().status().code(), absl::StatusCode::kFailedPrecondition);
    // Python closes a read-only connection in this case.
    auto [r, w] = MakePipe(false);
    ASSERT_TRUE(w.SendBytes(std::string(100, 'x')).ok());
    EXPECT_EQ(r.RecvBytes(10).status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_TRUE(r.closed());
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

// Writes raw bytes to the peer of `b`.
void WriteRaw(Connection& a, absl::string_view bytes) {
  ASSERT_TRUE(WriteAll(a.fileno(), bytes).ok());
}

TEST(ConnectionTest, HeaderClaimingATerabyteAllocatesOnlyWhatArrives) {
  testing::LeakCheck leaks;
  {
    auto [a, b] = MakePipe();
    char header[12];
    size_t n = ipc_internal::EncodeFrameHeader(uint64_t{1} << 40, header);
    WriteRaw(a, absl::string_view(header, n));
    WriteRaw(a, "only a few bytes");
    ASSERT_TRUE(a.Close().ok());
    absl::StatusOr<std::string> m = b.RecvBytes();
    EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss) << m.status();
    EXPECT_FALSE(b.readable());
    // With a maxlength, nothing is read at all.
    auto [c, d] = MakePipe();
    WriteRaw(c, absl::string_view(header, n));
    EXPECT_EQ(d.RecvBytes(1 << 20).status().code(),
              absl::StatusCode::kResourceExhausted);
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionTest, TruncatedFramesAndCorruptHeaders) {
  testing::LeakCheck leaks;
  {
    {
      auto [a, b] = MakePipe();
      WriteRaw(a, std::string("\0\0", 2));  // half a header
      ASSERT_TRUE(a.Close().ok());
      EXPECT_EQ(b.RecvBytes().status().code(), absl::StatusCode::kDataLoss);
    }
    {
      auto [a, b] = MakePipe();
      WriteRaw(a, std::string("\0\0\0\x64" "ten bytes!", 14));  // 100 promised
      ASSERT_TRUE(a.Close().ok());
      absl::StatusOr<std::string> m = b.RecvBytes();
      EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss);
      EXPECT_NE(m.status().message().find("mid-message"), std::string::npos);
    }
    {
      auto [a, b] = MakePipe();
      WriteRaw(a, "\xff\xff\xff\xff\0\0");  // long header cut short
      ASSERT_TRUE(a.Close().ok());
      EXPECT_EQ(b.RecvBytes().status().code(), absl::StatusCode::kDataLoss);
    }
    {
      auto [a, b] = MakePipe();
      WriteRaw(a, "\xff\xff\xff\xf0");  // negative length
      EXPECT_EQ(b.RecvBytes().status().code(), absl::StatusCode::kDataLoss);
      EXPECT_FALSE(b.readable());
    }
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionTest, RecvBytesIntoSpan) {
  testing::LeakCheck leaks;
  {
    auto [a, b] = MakePipe();
    ASSERT_TRUE(a.SendBytes("short").ok());
    ASSERT_TRUE(a.SendBytes("a much longer message").ok());
    ASSERT_TRUE(a.SendBytes("next").ok());
    char buf[8];
    absl::StatusOr<size_t> n = b.RecvBytesInto(absl::MakeSpan(buf));
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(std::string(buf, *n), "short");
    std::string whole;
    n = b.RecvBytesInto(absl::MakeSpan(buf), &whole);
    EXPECT_EQ(n.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(whole, "a much longer message");
    // Still usable, as after Python's BufferTooShort.
    n = b.RecvBytesInto(absl::MakeSpan(buf));
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(std::string(buf, *n), "next");
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionTest, RecvBytesIntoStringReusesCapacity) {
  auto [a, b] = MakePipe();
  std::string buf;
  buf.reserve(1024);
  const char* data = buf.data();
  ASSERT_TRUE(a.SendBytes("first").ok());
  ASSERT_TRUE(a.SendBytes("second").ok());
  ASSERT_TRUE(b.RecvBytesInto(&buf).ok());
  EXPECT_EQ(buf, "first");
  ASSERT_TRUE(b.RecvBytesInto(&buf).ok());
  EXPECT_EQ(buf, "second");
  EXPECT_EQ(buf.data(), data);
}

TEST(ConnectionTest, PollWaitsForData) {
  auto [a, b] = MakePipe();
  EXPECT_FALSE(*b.Poll());
  EXPECT_FALSE(*b.Poll(absl::Milliseconds(20)));
  std::thread t([&a = a] {
    absl::SleepFor(absl::Milliseconds(50));
    ASSERT_TRUE(a.SendBytes("x").ok());
  });
  EXPECT_TRUE(*b.Poll(absl::Seconds(10)));
  t.join();
  EXPECT_EQ(*b.RecvBytes(), "x");
  ASSERT_TRUE(a.Close().ok());
  EXPECT_TRUE(*b.Poll());  // EOF is readable
}

TEST(ConnectionTest, RecvDeadline) {
  auto [a, b] = MakePipe();
  std::string buf;
  absl::Status s = b.RecvBytesInto(&buf, Connection::kNoMaxLength,
                                   absl::Now() + absl::Milliseconds(30));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  // Nothing had arrived: still usable.
  EXPECT_TRUE(b.readable());
  ASSERT_TRUE(a.SendBytes("late").ok());
  ASSERT_TRUE(b.RecvBytesInto(&buf, Connection::kNoMaxLength,
                              absl::Now() + absl::Seconds(10)).ok());
  EXPECT_EQ(buf, "late");
  // A deadline passing mid-message breaks the stream.
  ASSERT_TRUE(WriteAll(a.fileno(), std::string("\0\0\0\x10" "part", 8)).ok());
  s = b.RecvBytesInto(&buf, Connection::kNoMaxLength,
                      absl::Now() + absl::Milliseconds(30));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(b.readable());
}

TEST(ConnectionTest, LargeMessagesBetweenProcesses) {
  testing::LeakCheck leaks;
  {
    auto [parent, child] = MakePipe();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      parent.Close().IgnoreError();
      // Echo messages back until EOF.
      std::string buf;
      while (child.RecvBytesInto(&buf).ok()) {
        if (!child.SendBytes(buf).ok()) _exit(2);
      }
      _exit(0);
    }
    ASSERT_TRUE(child.Close().ok());
    for (size_t size : {size_t{0}, size_t{1}, size_t{100000},
                        size_t{70} << 20}) {  // 70 MiB: the growing path
      std::string msg(size, '\0');
      for (size_t i = 0; i < size; i += 4096) msg[i] = static_cast<char>(i / 4096);
      std::thread sender([&] { ASSERT_TRUE(parent.SendBytes(msg).ok()); });
      absl::StatusOr<std::string> back = parent.RecvBytes();
      sender.join();
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_TRUE(*back == msg) << size;
    }
    ASSERT_TRUE(parent.Close().ok());
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

}  // namespace
}  // namespace mp

namespace mp {
namespace {

TEST(ConnectionReadAheadTest, DefaultsPerKind) {
  auto [a, b] = MakePipe(true);
  EXPECT_TRUE(a.read_ahead() && b.read_ahead());
  auto [r, w] = MakePipe(false);
  EXPECT_FALSE(r.read_ahead());
}

TEST(ConnectionReadAheadTest, BurstOfMixedSizesArrivesIntactAndInOrder) {
  testing::LeakCheck leaks;
  for (bool read_ahead : {true, false}) {
    auto [a, b] = MakePipe(true);
    b.set_read_ahead(read_ahead);
    std::vector<std::string> sent;
    for (size_t i = 0; i < 200; ++i) {
      size_t size = (i % 10 == 9) ? 40000 + i : i % 7;  // some bypass the buffer
      sent.push_back(std::string(size, static_cast<char>('a' + i % 26)));
    }
    std::thread t([&a = a, &sent] {
      for (const std::string& m : sent) ASSERT_TRUE(a.SendBytes(m).ok());
      ASSERT_TRUE(a.Close().ok());
    });
    for (const std::string& m : sent) {
      absl::StatusOr<std::string> got = b.RecvBytes();
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(*got, m);
    }
    t.join();
    EXPECT_EQ(b.RecvBytes().status().code(), absl::StatusCode::kOutOfRange);
    EXPECT_EQ(b.buffered(), 0u);
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionReadAheadTest, PollAndWaitSeeBufferedMessages) {
  auto [a, b] = MakePipe(true);
  ASSERT_TRUE(a.SendBytes("one").ok());
  ASSERT_TRUE(a.SendBytes("two").ok());
  // Make sure both frames are in the socket, so one read takes both.
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(*b.RecvBytes(), "one");
  EXPECT_GT(b.buffered(), 0u);
  EXPECT_TRUE(*b.Poll());  // the fd itself is empty now
  EXPECT_FALSE(*WaitReadable(b.fileno(), absl::ZeroDuration()));
  EXPECT_EQ(*b.RecvBytes(), "two");
  EXPECT_FALSE(*b.Poll());
}

TEST(ConnectionReadAheadTest, MoveCarriesBufferedBytes) {
  auto [a, b] = MakePipe(true);
  ASSERT_TRUE(a.SendBytes("one").ok());
  ASSERT_TRUE(a.SendBytes("two").ok());
  EXPECT_EQ(*b.RecvBytes(), "one");
  Connection moved = std::move(b);
  EXPECT_EQ(b.buffered(), 0u);
  EXPECT_TRUE(b.closed());
  EXPECT_EQ(b.RecvBytes().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*moved.RecvBytes(), "two");
}

TEST(ConnectionReadAheadTest, TurningItOffKeepsBufferedBytes) {
  auto [a, b] = MakePipe(true);
  ASSERT_TRUE(a.SendBytes("one").ok());
  ASSERT_TRUE(a.SendBytes("two").ok());
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(*b.RecvBytes(), "one");
  b.set_read_ahead(false);
  EXPECT_EQ(*b.RecvBytes(), "two");
  ASSERT_TRUE(a.SendBytes("three").ok());
  EXPECT_EQ(*b.RecvBytes(), "three");
}

// ---- spin-then-block receiving ------------------------------------------------

TEST(ConnectionSpinTest, DefaultClampAndMove) {
  auto [a, b] = MakePipe();
  EXPECT_EQ(a.spin(), Connection::kDefaultSpin);
  EXPECT_EQ(Connection().spin(), Connection::kDefaultSpin);
  a.set_spin(absl::ZeroDuration());
  EXPECT_EQ(a.spin(), absl::ZeroDuration());
  a.set_spin(absl::Microseconds(-3));
  EXPECT_EQ(a.spin(), absl::ZeroDuration());
  a.set_spin(absl::InfiniteDuration());
  EXPECT_EQ(a.spin(), Connection::kMaxSpin);
  a.set_spin(absl::Microseconds(7));
  Connection moved = std::move(a);
  EXPECT_EQ(moved.spin(), absl::Microseconds(7));
}

// Messages of mixed sizes, some sent at once and some after a pause (so
// receives find data ready, find it while spinning, or sleep first), over a
// socketpair and an os pipe, with read-ahead on and off: every spin setting
// must receive exactly the same messages.
std::vector<std::string> Exchange(bool duplex, bool read_ahead,
                                  absl::Duration spin) {
  auto [a, b] = MakePipe(duplex);
  Connection& rx = duplex ? b : a;
  Connection& tx = duplex ? a : b;
  rx.set_read_ahead(read_ahead);
  rx.set_spin(spin);
  std::vector<std::string> sent;
  for (int i = 0; i < 24; ++i) {
    sent.push_back(std::string(i % 5 == 0 ? 70000 : 1 + 37 * i, 'a' + i));
  }
  std::thread sender([&tx = tx, &sent] {
    for (size_t i = 0; i < sent.size(); ++i) {
      if (i % 3 == 1) absl::SleepFor(absl::Microseconds(200));
      if (i % 3 == 2) absl::SleepFor(absl::Milliseconds(3));
      ASSERT_TRUE(tx.SendBytes(sent[i]).ok());
    }
    ASSERT_TRUE(tx.Send(std::make_pair(int64_t{42}, std::string("typed"))).ok());
    ASSERT_TRUE(tx.Close().ok());
  });
  std::vector<std::string> got;
  std::string buf;
  while (got.size() < sent.size()) {
    absl::Status s = rx.RecvBytesInto(&buf);
    if (!s.ok()) {
      ADD_FAILURE() << s;
      break;
    }
    got.push_back(buf);
  }
  absl::StatusOr<std::pair<int64_t, std::string>> typed =
      rx.Recv<std::pair<int64_t, std::string>>();
  EXPECT_TRUE(typed.ok()) << typed.status();
  if (typed.ok()) got.push_back(absl::StrCat(typed->first, typed->second));
  absl::Status eof = rx.RecvBytesInto(&buf);
  EXPECT_EQ(eof.code(), absl::StatusCode::kOutOfRange) << eof;
  sender.join();
  EXPECT_EQ(got.size(), sent.size() + 1);
  for (size_t i = 0; i < sent.size() && i < got.size(); ++i) {
    EXPECT_EQ(got[i], sent[i]) << "message " << i;
  }
  return got;
}

TEST(ConnectionSpinTest, SpinDisabledAndEnabledReceiveTheSame) {
  testing::LeakCheck leaks;
  for (bool duplex : {true, false}) {
    for (bool read_ahead : {true, false}) {
      SCOPED_TRACE(absl::StrCat("duplex=", duplex, " read_ahead=", read_ahead));
      std::vector<std::string> off =
          Exchange(duplex, read_ahead, absl::ZeroDuration());
      EXPECT_EQ(Exchange(duplex, read_ahead, Connection::kDefaultSpin), off);
      EXPECT_EQ(Exchange(duplex, read_ahead, Connection::kMaxSpin), off);
    }
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionSpinTest, TimeoutsHonouredWhileSpinning) {
  for (bool duplex : {true, false}) {
    SCOPED_TRACE(duplex ? "socketpair" : "pipe");
    auto [a, b] = MakePipe(duplex);
    Connection& rx = duplex ? b : a;
    Connection& tx = duplex ? a : b;
    rx.set_spin(Connection::kMaxSpin);  // 10 ms: longer than the timeouts
    // Poll(0) never spins or waits; a short Poll times out.
    EXPECT_FALSE(*rx.Poll());
    const absl::Time start = absl::Now();
    EXPECT_FALSE(*rx.Poll(absl::Milliseconds(2)));
    EXPECT_GE(absl::Now() - start, absl::Milliseconds(2));
    EXPECT_LT(absl::Now() - start, absl::Seconds(5));
    // A receive deadline shorter than the spin: kDeadlineExceeded, usable.
    std::string buf;
    absl::Status s = rx.RecvBytesInto(&buf, Connection::kNoMaxLength,
                                      absl::Now() + absl::Milliseconds(2));
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_TRUE(rx.readable());
    ASSERT_TRUE(tx.SendBytes("late").ok());
    EXPECT_TRUE(*rx.Poll(absl::Milliseconds(1)));
    ASSERT_TRUE(rx.RecvBytesInto(&buf, Connection::kNoMaxLength,
                                 absl::Now() + absl::Seconds(10))
                    .ok());
    EXPECT_EQ(buf, "late");
    // Mid-message, the deadline breaks the stream, as without spinning.
    ASSERT_TRUE(
        WriteAll(tx.fileno(), std::string("\0\0\0\x10" "part", 8)).ok());
    s = rx.RecvBytesInto(&buf, Connection::kNoMaxLength,
                         absl::Now() + absl::Milliseconds(2));
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_FALSE(rx.readable());
  }
}

TEST(ConnectionSpinTest, EndOfFileWhileSpinningIsReported) {
  testing::LeakCheck leaks;
  for (bool duplex : {true, false}) {
    SCOPED_TRACE(duplex ? "socketpair" : "pipe");
    {
      // A clean close while the receiver spins (or sleeps): kOutOfRange.
      auto [a, b] = MakePipe(duplex);
      Connection& rx = duplex ? b : a;
      Connection& tx = duplex ? a : b;
      rx.set_spin(Connection::kMaxSpin);
      std::thread closer([&tx = tx] {
        absl::SleepFor(absl::Microseconds(500));
        ASSERT_TRUE(tx.Close().ok());
      });
      absl::StatusOr<std::string> r = rx.RecvBytes();
      closer.join();
      EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange) << r.status();
      EXPECT_EQ(rx.RecvBytes().status().code(), absl::StatusCode::kOutOfRange);
    }
    {
      // Closed mid-message: kDataLoss, and the connection is unusable for
      // receiving, as without spinning.
      auto [a, b] = MakePipe(duplex);
      Connection& rx = duplex ? b : a;
      Connection& tx = duplex ? a : b;
      rx.set_spin(Connection::kMaxSpin);
      std::thread closer([&tx = tx] {
        ASSERT_TRUE(WriteAll(tx.fileno(), std::string("\0\0\0\x08" "ab", 6)).ok());
        absl::SleepFor(absl::Microseconds(500));
        ASSERT_TRUE(tx.Close().ok());
      });
      absl::StatusOr<std::string> r = rx.RecvBytes();
      closer.join();
      EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
      EXPECT_EQ(rx.RecvBytes().status().code(),
                absl::StatusCode::kFailedPrecondition);
    }
    {
      // Poll sees EOF while spinning.
      auto [a, b] = MakePipe(duplex);
      Connection& rx = duplex ? b : a;
      Connection& tx = duplex ? a : b;
      rx.set_spin(Connection::kMaxSpin);
      std::thread closer([&tx = tx] {
        absl::SleepFor(absl::Microseconds(500));
        ASSERT_TRUE(tx.Close().ok());
      });
      EXPECT_TRUE(*rx.Poll(absl::Seconds(10)));
      closer.join();
      EXPECT_EQ(rx.RecvBytes().status().code(), absl::StatusCode::kOutOfRange);
    }
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(ConnectionSpinTest, PingPongBetweenProcessesWithSpinOnBothEnds) {
  testing::LeakCheck leaks;
  {
    auto [parent, child] = MakePipe();
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      (void)parent.Close();
      std::string buf;
      int n = 0;
      while (child.RecvBytesInto(&buf).ok()) {
        ++n;
        if (!child.SendBytes(buf).ok()) _exit(2);
      }
      _exit(n == 2000 ? 0 : 1);
    }
    ASSERT_TRUE(child.Close().ok());
    std::string buf;
    for (int i = 0; i < 2000; ++i) {
      const std::string msg = absl::StrCat("m", i);
      ASSERT_TRUE(parent.SendBytes(msg).ok());
      ASSERT_TRUE(parent.RecvBytesInto(&buf).ok());
      ASSERT_EQ(buf, msg);
    }
    ASSERT_TRUE(parent.Close().ok());
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

}  // namespace
}  // namespace mp
