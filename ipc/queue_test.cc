#include "ipc/queue.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ipc/codec.h"
#include "ipc/internal/queue_ring.h"
#include "process/fd.h"
#include "process/leak_check.h"
#include "process/process.h"
#include "shm/shared_memory.h"

namespace mp {
namespace {

using ipc_internal::QueueHeader;
using ipc_internal::QueueHookPoint;
using ipc_internal::RecordHeader;
using testing::LeakCheck;

struct Point {
  int x = 0;
  std::string label;
  std::vector<double> weights;
  MP_CODEC_FIELDS(x, label, weights);
  bool operator==(const Point& o) const {
    return x == o.x && label == o.label && weights == o.weights;
  }
};

// Encodes like a Queue handle (its segment name).
struct Handle {
  std::string name;
  MP_CODEC_FIELDS(name);
};

// Segment names of this test binary: "mpqt<pid>_<n>", checked by LeakCheck.
std::string Prefix() { return absl::StrCat("mpqt", getpid(), "_"); }
std::string FreshName() {
  static std::atomic<int> n{0};
  return absl::StrCat(Prefix(), n++);
}

QueueOptions Options(uint64_t maxsize = 0, uint64_t capacity = 1 << 16) {
  QueueOptions o;
  o.maxsize = maxsize;
  o.capacity = capacity;
  o.name = FreshName();
  return o;
}

template <typename T>
Queue<T> MakeQueue(const QueueOptions& options) {
  absl::StatusOr<Queue<T>> q = Queue<T>::Create(options);
  EXPECT_TRUE(q.ok()) << q.status();
  return *std::move(q);
}

// Runs `f` in a forked mp::Process, joins it, returns its exit code.
template <typename F>
int RunChild(F f) {
  Process p(f);
  absl::Status s = p.Start();
  EXPECT_TRUE(s.ok()) << s;
  s = p.Join(absl::Seconds(30));
  EXPECT_TRUE(s.ok()) << s;
  return p.exitcode().value_or(-1000);
}

TEST(QueueTest, PutGetKeepsFifoOrderForManyTypes) {
  LeakCheck leaks(Prefix());
  {
    Queue<int64_t> ints = MakeQueue<int64_t>(Options());
    Queue<std::string> strings = MakeQueue<std::string>(Options());
    Queue<Point> points = MakeQueue<Point>(Options());
    for (int64_t i = 0; i < 100; ++i) ASSERT_TRUE(ints.Put(i * i).ok());
    for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(*ints.Get(), i * i);
    ASSERT_TRUE(strings.Put("").ok());
    ASSERT_TRUE(strings.Put("hello").ok());
    ASSERT_TRUE(strings.Put(std::string(3000, 'z')).ok());
    EXPECT_EQ(*strings.Get(), "");
    EXPECT_EQ(*strings.Get(), "hello");
    EXPECT_EQ(*strings.Get(), std::string(3000, 'z'));
    Point p{7, "seven", {1.5, 2.5}};
    ASSERT_TRUE(points.Put(p).ok());
    EXPECT_EQ(*points.Get(), p);
    EXPECT_TRUE(ints.Empty());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, NoWaitReportsFullAndEmptyWithDistinctCodes) {
  Queue<int> q = MakeQueue<int>(Options(/*maxsize=*/2));
  absl::StatusOr<int> empty = q.GetNoWait();
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(q.PutNoWait(1).ok());
  EXPECT_TRUE(q.PutNoWait(2).ok());
  EXPECT_TRUE(q.Full());
  absl::Status full = q.PutNoWait(3);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_EQ(q.QSize(), 2u);
  EXPECT_EQ(*q.GetNoWait(), 1);
  EXPECT_FALSE(q.Full());
  EXPECT_TRUE(q.PutNoWait(3).ok());
  EXPECT_EQ(*q.GetNoWait(), 2);
  EXPECT_EQ(*q.GetNoWait(), 3);
  EXPECT_TRUE(q.Empty());
  EXPECT_EQ(q.QSize(), 0u);
}

TEST(QueueTest, TimeoutsGiveFullAndEmpty) {
  Queue<int> q = MakeQueue<int>(Options(/*maxsize=*/1));
  const absl::Time start = absl::Now();
  absl::StatusOr<int> v = q.Get(absl::Milliseconds(50));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(q.Put(1, absl::Milliseconds(50)).ok());
  absl::Status s = q.Put(2, absl::Milliseconds(50));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));  // it did wait
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(*q.Get(absl::Milliseconds(50)), 1);
}

TEST(QueueTest, ByteCapacityLimitsAnUnboundedQueue) {
  QueueOptions o = Options(/*maxsize=*/0, /*capacity=*/4096);
  Queue<std::string> q = MakeQueue<std::string>(o);
  EXPECT_EQ(q.capacity(), 4096u);
  const std::string v(900, 'a');
  int n = 0;
  while (q.PutNoWait(v).ok()) ++n;
  EXPECT_EQ(n, 4);  // records of 8 + 914 -> 920 bytes: 4 fit, the 5th not
  EXPECT_FALSE(q.Full());  // a small value still fits
  absl::Status s = q.PutNoWait(v);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  for (int i = 0; i < n; ++i) EXPECT_EQ(*q.GetNoWait(), v);
}

TEST(QueueTest, RecordsWrapAroundTheRingEnd) {
  Queue<std::string> q = MakeQueue<std::string>(Options(0, 4096));
  // Sizes chosen so records straddle the end many times.
  for (int round = 0; round < 200; ++round) {
    const std::string a(round % 37 * 31 + 1, static_cast<char>('a' + round % 26));
    const std::string b(round % 11 * 97 + 3, 'Q');
    ASSERT_TRUE(q.PutNoWait(a).ok()) << round;
    ASSERT_TRUE(q.PutNoWait(b).ok()) << round;
    ASSERT_EQ(*q.GetNoWait(), a) << round;
    ASSERT_EQ(*q.GetNoWait(), b) << round;
  }
  EXPECT_TRUE(q.Empty());
}

TEST(QueueTest, CloseRejectsLaterPutAndGet) {
  Queue<int> q = MakeQueue<int>(Options());
  ASSERT_TRUE(q.Put(1).ok());
  Queue<int> copy = q;
  q.Close();
  EXPECT_EQ(q.Put(2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(copy.Get().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(q.PutNoWait(2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(q.QSize(), 1u);  // the value is still there for other processes
}

TEST(QueueTest, CloseInOneProcessDoesNotAffectAnother) {
  LeakCheck leaks(Prefix());
  {
    Queue<int> q = MakeQueue<int>(Options());
    int code = RunChild([q]() mutable {
      q.Close();
      return q.Put(1).code() == absl::StatusCode::kFailedPrecondition ? 0 : 1;
    });
    EXPECT_EQ(code, 0);
    EXPECT_TRUE(q.Put(5).ok());
    EXPECT_EQ(*q.Get(), 5);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, DefaultConstructedHandleFailsCleanly) {
  Queue<int> q;
  EXPECT_EQ(q.Put(1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(q.Get().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(q.Empty());
  EXPECT_EQ(q.QSize(), 0u);
}

TEST(QueueTest, CreateRejectsBadOptions) {
  QueueOptions o = Options();
  o.maxsize = uint64_t{1} << 31;
  EXPECT_EQ(Queue<int>::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options();
  o.capacity = uint64_t{1} << 35;
  EXPECT_EQ(Queue<int>::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options();
  Queue<int> q = MakeQueue<int>(o);
  EXPECT_EQ(Queue<int>::Create(o).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(QueueTest, AttachChecksTheSegment) {
  LeakCheck leaks(Prefix());
  {
    EXPECT_EQ(Queue<int>::Attach(FreshName()).status().code(),
              absl::StatusCode::kNotFound);
    absl::StatusOr<SharedMemory> other = SharedMemory::Create(8192, FreshName());
    ASSERT_TRUE(other.ok());
    absl::StatusOr<Queue<int>> q = Queue<int>::Attach(other->name());
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument)
        << q.status();
    // A decoded handle of a non-queue fails at first use, clearly.
    Queue<int> decoded;
    ASSERT_TRUE(DecodeInto(Encode(Handle{other->name()}), &decoded).ok());
    EXPECT_EQ(decoded.Put(1).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, HandleRoundTripsThroughTheCodec) {
  Queue<int> q = MakeQueue<int>(Options());
  absl::StatusOr<Queue<int>> copy = Decode<Queue<int>>(Encode(q));
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->name(), q.name());
  ASSERT_TRUE(copy->Put(11).ok());  // attaches lazily
  EXPECT_EQ(*q.Get(), 11);
}

TEST(QueueTest, ValueOfTheWrongTypeIsAnErrorAndIsConsumed) {
  Queue<int64_t> q = MakeQueue<int64_t>(Options());
  absl::StatusOr<Queue<std::string>> as_strings =
      Queue<std::string>::Attach(q.name());
  ASSERT_TRUE(as_strings.ok());
  ASSERT_TRUE(q.Put(1).ok());
  ASSERT_TRUE(q.Put(2).ok());
  absl::StatusOr<std::string> wrong = as_strings->Get();
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument)
      << wrong.status();
  EXPECT_EQ(*q.Get(), 2);
}

// ---- hostile data in the ring ----------------------------------------------------------

TEST(QueueTest, CorruptRecordLengthGivesDataLossNotACrash) {
  Queue<int64_t> q = MakeQueue<int64_t>(Options());
  ASSERT_TRUE(q.Put(1).ok());
  absl::StatusOr<SharedMemory> raw = SharedMemory::Attach(q.name());
  ASSERT_TRUE(raw.ok());
  char* ring = raw->data() + ipc_internal::kQueueHeaderSize;
  RecordHeader rh;
  std::memcpy(&rh, ring, sizeof rh);
  EXPECT_EQ(rh.length, ipc_internal::kCodecHeaderSize + 8);
  // A huge length with a matching check: still beyond what was published.
  rh.length = 1u << 30;
  rh.check = ipc_internal::RecordCheck(rh.length, rh.kind);
  std::memcpy(ring, &rh, sizeof rh);
  absl::StatusOr<int64_t> v = q.Get();
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss) << v.status();
  EXPECT_NE(v.status().message().find("corrupt"), std::string::npos);
  // A length that does not match its check.
  rh.length = 14;
  rh.check = 0x1234;
  std::memcpy(ring, &rh, sizeof rh);
  EXPECT_EQ(q.Get().status().code(), absl::StatusCode::kDataLoss);
  // An unknown kind.
  rh.kind = 77;
  rh.check = ipc_internal::RecordCheck(rh.length, rh.kind);
  std::memcpy(ring, &rh, sizeof rh);
  EXPECT_EQ(q.Get().status().code(), absl::StatusCode::kDataLoss);
  // A pad record that does not reach the end of the ring.
  rh.kind = ipc_internal::kRecordPad;
  rh.check = ipc_internal::RecordCheck(rh.length, rh.kind);
  std::memcpy(ring, &rh, sizeof rh);
  EXPECT_EQ(q.Get().status().code(), absl::StatusCode::kDataLoss);
  // Garbage value bytes with a valid header: the codec rejects them.
  rh.kind = ipc_internal::kRecordValue;
  rh.check = ipc_internal::RecordCheck(rh.length, rh.kind);
  std::memcpy(ring, &rh, sizeof rh);
  std::memset(ring + sizeof rh, 0xEE, 14);
  EXPECT_EQ(q.Get().status().code(), absl::StatusCode::kDataLoss);
  // The queue still works afterwards (that record was consumed).
  ASSERT_TRUE(q.Put(5).ok());
  EXPECT_EQ(*q.Get(), 5);
}

TEST(QueueTest, CorruptPositionsGiveDataLoss) {
  Queue<int64_t> q = MakeQueue<int64_t>(Options());
  ASSERT_TRUE(q.Put(1).ok());
  absl::StatusOr<SharedMemory> raw = SharedMemory::Attach(q.name());
  ASSERT_TRUE(raw.ok());
  auto* h = reinterpret_cast<QueueHeader*>(raw->data());
  h->tail.word.store(ipc_internal::PosWord(5, 1u << 31));  // beyond capacity
  absl::StatusOr<int64_t> v = q.Get();
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss) << v.status();
}

TEST(QueueTest, CorruptOutOfLineNameIsRejected) {
  LeakCheck leaks(Prefix());
  {
    Queue<std::string> q = MakeQueue<std::string>(Options(0, 4096));
    ASSERT_TRUE(q.Put(std::string(10000, 'o')).ok());
    absl::StatusOr<SharedMemory> raw = SharedMemory::Attach(q.name());
    ASSERT_TRUE(raw.ok());
    char* ring = raw->data() + ipc_internal::kQueueHeaderSize;
    RecordHeader rh;
    std::memcpy(&rh, ring, sizeof rh);
    ASSERT_EQ(rh.kind, ipc_internal::kRecordOutOfLine);
    // Point it at a segment that is not the queue's: must not be touched.
    std::string real(ring + sizeof rh + 8, rh.length - 8);
    std::string evil = real;
    evil[0] = 'X';
    std::memcpy(ring + sizeof rh + 8, evil.data(), evil.size());
    absl::StatusOr<std::string> v = q.Get();
    EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss) << v.status();
    // Restore so the creator can clean the segment up.
    std::memcpy(ring + sizeof rh + 8, real.data(), real.size());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, CorruptOutOfLineSizeIsRejected) {
  LeakCheck leaks(Prefix());
  {
    Queue<std::string> q = MakeQueue<std::string>(Options(0, 4096));
    ASSERT_TRUE(q.Put(std::string(10000, 'o')).ok());
    ASSERT_TRUE(q.Put(std::string(10000, 'p')).ok());
    absl::StatusOr<SharedMemory> raw = SharedMemory::Attach(q.name());
    ASSERT_TRUE(raw.ok());
    char* ring = raw->data() + ipc_internal::kQueueHeaderSize;
    // First record: claims more bytes than its segment has.
    uint64_t size = uint64_t{1} << 40;
    std::memcpy(ring + sizeof(RecordHeader), &size, sizeof size);
    absl::StatusOr<std::string> v = q.Get();
    EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss) << v.status();
    // Second record: a payload too short to hold a name.
    RecordHeader rh;
    const size_t second = ipc_internal::RecordSize(
        sizeof(uint64_t) + q.name().size() + 13);  // "_ool_" + 8 hex
    std::memcpy(&rh, ring + second, sizeof rh);
    ASSERT_EQ(rh.kind, ipc_internal::kRecordOutOfLine);
    const RecordHeader saved = rh;
    rh.length = 4;
    rh.check = ipc_internal::RecordCheck(rh.length, rh.kind);
    std::memcpy(ring + second, &rh, sizeof rh);
    v = q.Get();
    EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss) << v.status();
    std::memcpy(ring + second, &saved, sizeof saved);  // let it be cleaned up
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

// ---- large values ------------------------------------------------------------------------

TEST(QueueTest, LargeValuesGoOutOfLineAndLeaveNothingBehind) {
  LeakCheck leaks(Prefix());
  {
    Queue<std::string> q = MakeQueue<std::string>(Options(0, 4096));
    const std::string big(1 << 20, 'B');
    ASSERT_TRUE(q.Put("small1").ok());
    ASSERT_TRUE(q.Put(big).ok());
    ASSERT_TRUE(q.Put("small2").ok());
    EXPECT_EQ(q.QSize(), 3u);
    EXPECT_EQ(testing::ShmEntries(Prefix()).size(), 2u);  // ring + value
    EXPECT_EQ(*q.Get(), "small1");
    EXPECT_EQ(*q.Get(), big);
    EXPECT_EQ(*q.Get(), "small2");
    EXPECT_EQ(testing::ShmEntries(Prefix()).size(), 1u);
    // Queued, never got: the creator removes them with the queue.
    ASSERT_TRUE(q.Put(big).ok());
    ASSERT_TRUE(q.Put(big).ok());
    EXPECT_EQ(testing::ShmEntries(Prefix()).size(), 3u);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, LargeAndSmallValuesAcrossProcesses) {
  LeakCheck leaks(Prefix());
  {
    Queue<std::vector<int32_t>> q =
        MakeQueue<std::vector<int32_t>>(Options(0, 8192));
    int code = RunChild([q]() mutable {
      for (int i = 0; i < 50; ++i) {
        std::vector<int32_t> v(i % 5 == 0 ? 100000 : i, i);
        if (!q.Put(v).ok()) return 1;
      }
      return 0;
    });
    EXPECT_EQ(code, 0);
    for (int i = 0; i < 50; ++i) {
      absl::StatusOr<std::vector<int32_t>> v = q.Get(absl::Seconds(10));
      ASSERT_TRUE(v.ok()) << v.status();
      EXPECT_EQ(v->size(), i % 5 == 0 ? 100000u : static_cast<size_t>(i));
      if (!v->empty()) {
        EXPECT_EQ(v->back(), i);
      }
    }
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

// ---- across processes ------------------------------------------------------------------

TEST(QueueTest, ChildPutsParentGetsInOrderThroughASmallRing) {
  LeakCheck leaks(Prefix());
  {
    Queue<std::string> q = MakeQueue<std::string>(Options(0, 4096));
    Process p([q]() mutable {
      for (int i = 0; i < 5000; ++i) {
        if (!q.Put(std::string(i % 300, 'a' + i % 26)).ok()) return 1;
      }
      return 0;
    });
    ASSERT_TRUE(p.Start().ok());
    for (int i = 0; i < 5000; ++i) {
      absl::StatusOr<std::string> v = q.Get(absl::Seconds(10));
      ASSERT_TRUE(v.ok()) << i << ": " << v.status();
      ASSERT_EQ(*v, std::string(i % 300, 'a' + i % 26)) << i;
    }
    ASSERT_TRUE(p.Join(absl::Seconds(30)).ok());
    EXPECT_EQ(p.exitcode(), 0);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, BlockedGetWakesWhenAValueArrives) {
  Queue<int> q = MakeQueue<int>(Options());
  Process p([q]() mutable {
    absl::SleepFor(absl::Milliseconds(200));
    return q.Put(99).ok() ? 0 : 1;
  });
  ASSERT_TRUE(p.Start().ok());
  absl::StatusOr<int> v = q.Get(absl::Seconds(20));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 99);
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(QueueTest, BlockedPutWakesWhenSpaceFrees) {
  Queue<int> q = MakeQueue<int>(Options(/*maxsize=*/1));
  ASSERT_TRUE(q.Put(1).ok());
  Process p([q]() mutable {
    absl::SleepFor(absl::Milliseconds(200));
    absl::StatusOr<int> v = q.Get();
    return v.ok() && *v == 1 ? 0 : 1;
  });
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(q.Put(2, absl::Seconds(20)).ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(*q.Get(), 2);
}

TEST(QueueTest, ManyProducersManyConsumersDeliverEachValueOnce) {
  LeakCheck leaks(Prefix());
  {
    constexpr int kProducers = 3, kConsumers = 3, kPerProducer = 3000;
    Queue<int64_t> q = MakeQueue<int64_t>(Options(/*maxsize=*/100, 4096));
    // (sum, count) per consumer, in one value: values of different
    // consumers interleave.
    Queue<std::pair<int64_t, int64_t>> sums =
        MakeQueue<std::pair<int64_t, int64_t>>(Options());
    std::vector<Process> procs;
    for (int c = 0; c < kConsumers; ++c) {
      procs.emplace_back([q, sums]() mutable {
        int64_t sum = 0, n = 0;
        for (;;) {
          absl::StatusOr<int64_t> v = q.Get(absl::Seconds(20));
          if (!v.ok()) return 1;
          if (*v < 0) break;
          sum += *v;
          ++n;
        }
        return sums.Put({sum, n}).ok() ? 0 : 1;
      });
    }
    for (int p = 0; p < kProducers; ++p) {
      procs.emplace_back([q, p]() mutable {
        for (int64_t i = 0; i < kPerProducer; ++i) {
          if (!q.Put(p * kPerProducer + i).ok()) return 1;
        }
        return 0;
      });
    }
    for (Process& p : procs) ASSERT_TRUE(p.Start().ok());
    for (int i = kConsumers; i < kConsumers + kProducers; ++i) {
      ASSERT_TRUE(procs[i].Join(absl::Seconds(30)).ok());
      EXPECT_EQ(procs[i].exitcode(), 0);
    }
    for (int c = 0; c < kConsumers; ++c) ASSERT_TRUE(q.Put(-1).ok());
    int64_t total = 0, count = 0;
    for (int c = 0; c < kConsumers; ++c) {
      absl::StatusOr<std::pair<int64_t, int64_t>> r = sums.Get(absl::Seconds(30));
      ASSERT_TRUE(r.ok()) << r.status();
      total += r->first;
      count += r->second;
    }
    for (int c = 0; c < kConsumers; ++c) {
      ASSERT_TRUE(procs[c].Join(absl::Seconds(30)).ok());
      EXPECT_EQ(procs[c].exitcode(), 0);
    }
    const int64_t n = kProducers * kPerProducer;
    EXPECT_EQ(count, n);
    EXPECT_EQ(total, n * (n - 1) / 2);
    EXPECT_EQ(q.lost(), 0u);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

// Ping-pong: both sides find their queue empty at almost every Get and go
// to sleep, so a lost wake-up hangs (and fails on the timeout).
void PingPong(int rounds) {
  Queue<int> ping = MakeQueue<int>(Options());
  Queue<int> pong = MakeQueue<int>(Options());
  Process p([ping, pong, rounds]() mutable {
    for (int i = 0; i < rounds; ++i) {
      absl::StatusOr<int> v = ping.Get(absl::Seconds(20));
      if (!v.ok() || *v != i || !pong.Put(i).ok()) return 1;
    }
    return 0;
  });
  ASSERT_TRUE(p.Start().ok());
  for (int i = 0; i < rounds; ++i) {
    // Now and then long enough for the child to stop polling and sleep.
    if (i % 50 == 0) absl::SleepFor(absl::Milliseconds(1));
    ASSERT_TRUE(ping.Put(i).ok());
    absl::StatusOr<int> v = pong.Get(absl::Seconds(20));
    ASSERT_TRUE(v.ok()) << i << ": " << v.status();
    ASSERT_EQ(*v, i);
  }
  ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(QueueTest, PingPongNeverLosesAWakeUp) {
  LeakCheck leaks(Prefix());
  PingPong(3000);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, PingPongWithFencedPublishers) {
  ipc_internal::SetMembarrierForTesting(/*light_publish=*/false,
                                        /*sleeper_fence=*/true);
  PingPong(1000);
  ipc_internal::SetMembarrierForTesting(true, true);
}

TEST(QueueTest, PingPongWhenSleepersCannotFence) {
  // Light publishers, sleepers without membarrier: they poll in slices.
  ipc_internal::SetMembarrierForTesting(/*light_publish=*/true,
                                        /*sleeper_fence=*/false);
  PingPong(300);
  ipc_internal::SetMembarrierForTesting(true, true);
}

// Spawn: the child is a fresh exec of this binary; the queue travels as its
// name and is attached there.
int SpawnedProducer(Queue<int64_t> q, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!q.Put(i * 3).ok()) return 1;
  }
  return 0;
}
MP_REGISTER(SpawnedProducer);

void ChildAttachesByName(StartMethod method) {
  LeakCheck leaks(Prefix());
  {
    Queue<int64_t> q = MakeQueue<int64_t>(Options());
    ProcessOptions po;
    po.start_method = method;
    Process p(po, SpawnedProducer, q, int64_t{100});
    ASSERT_TRUE(p.Start().ok());
    for (int64_t i = 0; i < 100; ++i) {
      absl::StatusOr<int64_t> v = q.Get(absl::Seconds(20));
      ASSERT_TRUE(v.ok()) << v.status();
      EXPECT_EQ(*v, i * 3);
    }
    ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());
    EXPECT_EQ(p.exitcode(), 0);
  }
  ASSERT_TRUE(StopForkServer().ok());
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, SpawnedChildAttachesByName) {
  ChildAttachesByName(StartMethod::kSpawn);
}

TEST(QueueTest, ForkServerChildAttachesByName) {
  ChildAttachesByName(StartMethod::kForkServer);
}

// ---- processes killed mid-operation --------------------------------------------------

int g_hook_fd = -1;
QueueHookPoint g_hook_point;

void PauseHook(QueueHookPoint p) {
  if (p != g_hook_point) return;
  char c = 'h';
  (void)!write(g_hook_fd, &c, 1);
  for (;;) pause();
}

// Starts `body` in a child that installs the pause hook at `point`, waits
// until the child is paused there, SIGKILLs it and reaps it.
template <typename F>
void KillInside(QueueHookPoint point, F body) {
  absl::StatusOr<FdPair> pipe = MakePipe();
  ASSERT_TRUE(pipe.ok());
  const int wfd = pipe->write.get();
  Process p([wfd, point, body]() mutable {
    g_hook_fd = wfd;
    g_hook_point = point;
    ipc_internal::SetQueueTestHook(PauseHook);
    body();
    return 3;  // not reached when the hook fires
  });
  ASSERT_TRUE(p.Start().ok());
  pipe->write.reset();
  absl::StatusOr<bool> ready = WaitReadable(pipe->read.get(), absl::Seconds(20));
  ASSERT_TRUE(ready.ok() && *ready) << "child never reached the hook";
  ASSERT_TRUE(p.Kill().ok());
  ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

TEST(QueueTest, ProducerKilledInsidePutLosesOnlyItsValue) {
  LeakCheck leaks(Prefix());
  {
    Queue<int64_t> q = MakeQueue<int64_t>(Options());
    ASSERT_TRUE(q.Put(1).ok());
    KillInside(QueueHookPoint::kPutLocked, [q]() mutable { (void)q.Put(2); });
    // Others go on: the put lock's dead owner is detected and repaired.
    ASSERT_TRUE(q.Put(3, absl::Seconds(10)).ok());
    EXPECT_EQ(q.lost(), 1u);
    EXPECT_EQ(*q.Get(absl::Seconds(10)), 1);
    EXPECT_EQ(*q.Get(absl::Seconds(10)), 3);
    EXPECT_TRUE(q.Empty());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, ConsumerKilledBeforeTakingLosesNothing) {
  LeakCheck leaks(Prefix());
  {
    Queue<int64_t> q = MakeQueue<int64_t>(Options());
    ASSERT_TRUE(q.Put(1).ok());
    ASSERT_TRUE(q.Put(2).ok());
    KillInside(QueueHookPoint::kGetLocked, [q]() mutable { (void)q.Get(); });
    EXPECT_EQ(*q.Get(absl::Seconds(10)), 1);  // still there
    EXPECT_EQ(q.lost(), 0u);
    EXPECT_EQ(*q.Get(absl::Seconds(10)), 2);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, ConsumerKilledAfterTakingCountsOneLoss) {
  LeakCheck leaks(Prefix());
  {
    Queue<int64_t> q = MakeQueue<int64_t>(Options());
    ASSERT_TRUE(q.Put(1).ok());
    ASSERT_TRUE(q.Put(2).ok());
    KillInside(QueueHookPoint::kGetAfterPublish,
               [q]() mutable { (void)q.Get(); });
    EXPECT_EQ(*q.Get(absl::Seconds(10)), 2);
    EXPECT_EQ(q.lost(), 1u);
    ASSERT_TRUE(q.Put(4).ok());
    EXPECT_EQ(*q.Get(absl::Seconds(10)), 4);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, ConsumerKilledTakingAnOutOfLineValueLeaksNoSegment) {
  LeakCheck leaks(Prefix());
  {
    Queue<std::string> q = MakeQueue<std::string>(Options(0, 4096));
    ASSERT_TRUE(q.Put(std::string(100000, 'L')).ok());
    ASSERT_TRUE(q.Put("next").ok());
    KillInside(QueueHookPoint::kGetAfterPublish,
               [q]() mutable { (void)q.Get(); });
    EXPECT_EQ(*q.Get(absl::Seconds(10)), "next");
    EXPECT_EQ(q.lost(), 1u);
  }
  // The killed consumer's tracker removes the segment it was taking.
  EXPECT_TRUE(leaks.Verify(absl::Seconds(5)).ok()) << leaks.Verify();
}

TEST(QueueTest, WaitingConsumerKilledDoesNotWedgeTheQueue) {
  LeakCheck leaks(Prefix());
  {
    Queue<int64_t> q = MakeQueue<int64_t>(Options());
    Process p([q]() mutable { (void)q.Get(); });  // blocks holding the lock
    ASSERT_TRUE(p.Start().ok());
    absl::SleepFor(absl::Milliseconds(100));
    ASSERT_TRUE(p.Kill().ok());
    ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());
    ASSERT_TRUE(q.Put(8).ok());
    EXPECT_EQ(*q.Get(absl::Seconds(10)), 8);
    EXPECT_EQ(q.lost(), 0u);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, WaitingProducerKilledDoesNotWedgeTheQueue) {
  LeakCheck leaks(Prefix());
  {
    Queue<int64_t> q = MakeQueue<int64_t>(Options(/*maxsize=*/1));
    ASSERT_TRUE(q.Put(1).ok());
    Process p([q]() mutable { (void)q.Put(2); });  // full: waits holding the lock
    ASSERT_TRUE(p.Start().ok());
    absl::SleepFor(absl::Milliseconds(100));
    ASSERT_TRUE(p.Kill().ok());
    ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());
    EXPECT_EQ(*q.Get(absl::Seconds(10)), 1);
    ASSERT_TRUE(q.Put(3, absl::Seconds(10)).ok());
    EXPECT_EQ(*q.Get(absl::Seconds(10)), 3);
    EXPECT_EQ(q.lost(), 0u);  // it had written nothing
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(QueueTest, ThreadsOfOneProcessShareAQueue) {
  Queue<int64_t> q = MakeQueue<int64_t>(Options(/*maxsize=*/16));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([q, t]() mutable {
      for (int64_t i = 0; i < 1000; ++i) ASSERT_TRUE(q.Put(t * 1000 + i).ok());
    });
  }
  std::set<int64_t> seen;
  for (int i = 0; i < 4000; ++i) {
    absl::StatusOr<int64_t> v = q.Get(absl::Seconds(10));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_TRUE(seen.insert(*v).second);
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(seen.size(), 4000u);
}

// ---- segment lifetime ------------------------------------------------------------------

// Starts a child that runs `setup` (creates a queue and fills it; returns
// the queue, which the child keeps open) and then waits to be killed;
// returns once `setup` succeeded there.
template <typename Setup>
absl::StatusOr<Process> StartHoldingChild(Setup setup) {
  absl::StatusOr<FdPair> pipe = MakePipe();
  if (!pipe.ok()) return pipe.status();
  const int wfd = pipe->write.get();
  Process p([wfd, setup]() {
    auto held = setup();
    if (!held.ok()) return 1;
    (void)!write(wfd, "r", 1);
    for (;;) pause();
  });
  absl::Status started = p.Start();
  if (!started.ok()) return started;
  pipe->write.reset();
  char c;
  absl::StatusOr<bool> ready = WaitReadable(pipe->read.get(), absl::Seconds(20));
  if (!ready.ok() || !*ready || read(pipe->read.get(), &c, 1) != 1) {
    (void)p.Kill();
    (void)p.Join(absl::Seconds(20));
    return absl::InternalError("the child's setup failed or timed out");
  }
  return p;
}

TEST(QueueTest, CreatorKilledLeavesNoSegment) {
  LeakCheck leaks(Prefix());
  const std::string name = FreshName();
  {
    absl::StatusOr<Process> child = StartHoldingChild([name] {
      QueueOptions o;
      o.name = name;
      absl::StatusOr<Queue<int>> q = Queue<int>::Create(o);
      if (q.ok() && !q->Put(1).ok()) q = absl::InternalError("put");
      return q;
    });
    ASSERT_TRUE(child.ok()) << child.status();
    Process& p = *child;
    EXPECT_EQ(testing::ShmEntries(name).size(), 1u);
    ASSERT_TRUE(p.Kill().ok());
    ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());
  }
  EXPECT_TRUE(leaks.Verify(absl::Seconds(5)).ok()) << leaks.Verify();
}

TEST(QueueTest, CreatorKilledWithLargeValuesQueuedLeavesNoSegment) {
  // Out-of-line values still queued when the creator is SIGKILLed: one put
  // by the creator, one by another process (this one, which disowned it
  // once queued). The creator's tracker removes both with the ring.
  LeakCheck leaks(Prefix());
  const std::string name = FreshName();
  {
    absl::StatusOr<Process> child = StartHoldingChild([name] {
      QueueOptions o;
      o.name = name;
      o.capacity = 4096;
      absl::StatusOr<Queue<std::string>> q = Queue<std::string>::Create(o);
      if (q.ok() && (!q->Put(std::string(100000, 'c')).ok() ||
                     !q->Put("small").ok())) {
        q = absl::InternalError("put");
      }
      return q;
    });
    ASSERT_TRUE(child.ok()) << child.status();
    Process& p = *child;
    {
      absl::StatusOr<Queue<std::string>> q = Queue<std::string>::Attach(name);
      ASSERT_TRUE(q.ok()) << q.status();
      ASSERT_TRUE(q->Put(std::string(200000, 'p')).ok());
      EXPECT_EQ(q->QSize(), 3u);
    }
    // The ring and two out-of-line values.
    EXPECT_EQ(testing::ShmEntries(name).size(), 3u);
    EXPECT_EQ(testing::ShmEntries(absl::StrCat(name, "_ool_")).size(), 2u);
    ASSERT_TRUE(p.Kill().ok());
    ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());
    EXPECT_EQ(p.exitcode(), -SIGKILL);
  }
  EXPECT_TRUE(leaks.Verify(absl::Seconds(5)).ok()) << leaks.Verify();
}

TEST(QueueTest, OutOfLineSegmentsOfAnotherQueueAreNotTouched) {
  // The tracked prefix is `<name>_ool_`: a queue whose name merely extends
  // another's ("<name>_2") is not swept when the first one's creator dies.
  LeakCheck leaks(Prefix());
  const std::string name = FreshName();
  {
    Queue<std::string> other = MakeQueue<std::string>([&] {
      QueueOptions o = Options(0, 4096);
      o.name = absl::StrCat(name, "_2");
      return o;
    }());
    ASSERT_TRUE(other.Put(std::string(10000, 'o')).ok());
    absl::StatusOr<Process> child = StartHoldingChild([name] {
      QueueOptions o;
      o.name = name;
      o.capacity = 4096;
      absl::StatusOr<Queue<std::string>> q = Queue<std::string>::Create(o);
      if (q.ok() && !q->Put(std::string(10000, 'c')).ok()) {
        q = absl::InternalError("put");
      }
      return q;
    });
    ASSERT_TRUE(child.ok()) << child.status();
    Process& p = *child;
    ASSERT_TRUE(p.Kill().ok());
    ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());
    for (int i = 0; i < 500 && testing::ShmEntries(name).size() > 2; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    // Only the other queue's ring and value are left.
    EXPECT_EQ(testing::ShmEntries(name).size(), 2u);
    EXPECT_EQ(*other.Get(), std::string(10000, 'o'));
  }
  EXPECT_TRUE(leaks.Verify(absl::Seconds(5)).ok()) << leaks.Verify();
}

TEST(QueueTest, ChildExitingRightAfterPutNeverDeadlocks) {
  // Python's trap: a child that puts a large value and exits blocks at exit
  // until the parent reads. Here Put() returns only once the value is in the
  // queue, so the child exits at once and the parent may join first.
  LeakCheck leaks(Prefix());
  {
    Queue<std::string> q = MakeQueue<std::string>(Options(0, 4096));
    Process p([q]() mutable {
      return q.Put(std::string(1 << 20, 'x')).ok() ? 0 : 1;
    });
    ASSERT_TRUE(p.Start().ok());
    ASSERT_TRUE(p.Join(absl::Seconds(20)).ok());  // join before get
    EXPECT_EQ(p.exitcode(), 0);
    absl::StatusOr<std::string> v = q.Get(absl::Seconds(10));
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->size(), 1u << 20);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace mp
