#include "pool/internal/fork_transport.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "pool/internal/core.h"
#include "pool/internal/result_ring.h"
#include "pool/internal/typed.h"
#include "process/fd.h"
#include "process/internal/test_util.h"
#include "process/leak_check.h"
#include "process/spawn.h"

namespace mp {
namespace pool_internal {
namespace {

std::string Bytes(int n) { return std::string(n, 'b'); }

// Runs one task through a Core over a ForkTransport whose messages are
// limited to `max_payload` bytes.
absl::StatusOr<std::string> RunOne(size_t max_payload, int result_size,
                                   size_t arg_size = 0) {
  auto table = std::make_unique<FunctionTable>();
  table->Add(std::make_shared<CallRunner<std::string (*)(int), int, false>>(&Bytes));
  ForkTransportOptions options;
  options.max_payload = max_payload;
  absl::StatusOr<std::unique_ptr<ForkTransport>> transport =
      ForkTransport::Create(table.get(), options);
  if (!transport.ok()) return transport.status();
  Core core(CoreOptions{.processes = 1}, std::move(table), *std::move(transport));
  absl::Status started = core.Start();
  if (!started.ok()) return started;
  absl::Notification done;
  absl::StatusOr<std::string> got;
  Core::TaskSpec spec;
  spec.function = 0;
  spec.payload = Encode(std::vector<int>{result_size});
  if (arg_size > 0) spec.payload.assign(arg_size, 'a');
  spec.base_index = 0;
  spec.done = [&](absl::StatusOr<std::string> r) {
    got = std::move(r);
    done.Notify();
  };
  absl::StatusOr<std::vector<uint64_t>> ids = core.Submit({std::move(spec)});
  if (!ids.ok()) return ids.status();
  if (!done.WaitForNotificationWithTimeout(absl::Seconds(30))) {
    return absl::DeadlineExceededError("no result");
  }
  core.Close();
  absl::Status joined = core.Join();
  if (!joined.ok()) return joined;
  if (!got.ok()) return got.status();
  absl::StatusOr<std::vector<std::string>> rs = Decode<std::vector<std::string>>(*got);
  if (!rs.ok()) return rs.status();
  return (*rs)[0];
}

int SleepMs(int ms) {
  usleep(static_cast<useconds_t>(ms) * 1000);
  return ms;
}

// Workers have PR_SET_PDEATHSIG = SIGKILL, which Linux sends when the
// thread that forked them exits: a core started by a thread that then
// exits must keep its first workers, and they must run tasks.
TEST(ForkTransportTest, CoreStartedByAThreadThatExitsKeepsItsWorkers) {
  testing::LeakCheck leaks;
  {
    auto table = std::make_unique<FunctionTable>();
    table->Add(std::make_shared<CallRunner<int (*)(int), int, false>>(&SleepMs));
    absl::StatusOr<std::unique_ptr<ForkTransport>> transport =
        ForkTransport::Create(table.get(), ForkTransportOptions{});
    ASSERT_TRUE(transport.ok()) << transport.status();
    Core core(CoreOptions{.processes = 2}, std::move(table),
              *std::move(transport));
    absl::Status started;
    std::thread([&] { started = core.Start(); }).join();
    ASSERT_TRUE(started.ok()) << started;
    std::vector<int64_t> pids = core.WorkerPids();
    ASSERT_EQ(pids.size(), 2u);
    // Tasks that last, so that a worker killed after the thread's exit
    // would be holding one.
    std::mutex mu;
    int left = 8;
    std::vector<absl::Status> failures;
    absl::Notification all_done;
    std::vector<Core::TaskSpec> specs;
    for (int i = 0; i < 8; ++i) {
      Core::TaskSpec spec;
      spec.function = 0;
      spec.payload = Encode(std::vector<int>{20});
      spec.base_index = i;
      spec.done = [&](absl::StatusOr<std::string> r) {
        std::lock_guard<std::mutex> lock(mu);
        if (!r.ok()) failures.push_back(r.status());
        if (--left == 0) all_done.Notify();
      };
      specs.push_back(std::move(spec));
    }
    ASSERT_TRUE(core.Submit(std::move(specs)).ok());
    ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    for (const absl::Status& f : failures) ADD_FAILURE() << f;
    EXPECT_EQ(core.WorkerPids(), pids);
    EXPECT_EQ(core.workers_started(), 2);
    core.Close();
    EXPECT_TRUE(core.Join().ok());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ForkTransportTest, CarriesAResultThroughAWorker) {
  testing::LeakCheck leaks;
  absl::StatusOr<std::string> r = RunOne(1 << 20, 100);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::string(100, 'b'));
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

// A large string result travels bare; a task without `done_bare` (as here)
// still gets it encoded.
TEST(ForkTransportTest, BareResultReachesDoneEncoded) {
  testing::LeakCheck leaks;
  for (int size : {static_cast<int>(kBareStringMin), 300000, 1 << 20}) {
    absl::StatusOr<std::string> r = RunOne(4 << 20, size);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, std::string(size, 'b'));
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ForkTransportTest, BareResultLargerThanAMessageFailsItsTaskClearly) {
  testing::LeakCheck leaks;
  absl::StatusOr<std::string> r = RunOne(100000, 200000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(r.status().message(),
                                "the result of 200000 bytes exceeds"))
      << r.status();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ForkTransportTest, ResultLargerThanAMessageFailsItsTaskClearly) {
  testing::LeakCheck leaks;
  absl::StatusOr<std::string> r = RunOne(1000, 5000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "exceeds the message limit"))
      << r.status();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ForkTransportTest, ArgumentsLargerThanAMessageAreRefused) {
  testing::LeakCheck leaks;
  absl::StatusOr<std::string> r = RunOne(1000, 1, /*arg_size=*/2000);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

// A string whose bytes say which task made it: `n` bytes, `n` in the first
// eight, then a pattern that depends on `n`.
std::string Tagged(int n) {
  std::string s(static_cast<size_t>(n), static_cast<char>('a' + n % 26));
  uint64_t tag = static_cast<uint64_t>(n);
  std::memcpy(&s[0], &tag, sizeof tag);
  for (size_t i = 8; i < s.size(); i += 4096) s[i] = static_cast<char>(n * 7 + i);
  return s;
}

// Runs Tagged(size) for every size on `processes` forked workers whose
// result rings hold `ring_capacity` bytes; returns how many came through
// the rings, with every result checked.
void RunTagged(const std::vector<int>& sizes, int processes,
               size_t ring_capacity, uint64_t* through_ring) {
  auto table = std::make_unique<FunctionTable>();
  table->Add(std::make_shared<CallRunner<std::string (*)(int), int, false>>(&Tagged));
  ForkTransportOptions options;
  options.ring_capacity = ring_capacity;
  absl::StatusOr<std::unique_ptr<ForkTransport>> transport =
      ForkTransport::Create(table.get(), options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  ForkTransport* t = transport->get();
  Core core(CoreOptions{.processes = processes}, std::move(table),
            *std::move(transport));
  ASSERT_TRUE(core.Start().ok());
  std::mutex mu;
  size_t left = sizes.size();
  absl::Notification all_done;
  std::vector<Core::TaskSpec> specs;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Core::TaskSpec spec;
    spec.function = 0;
    spec.payload = Encode(std::vector<int>{sizes[i]});
    spec.base_index = static_cast<int64_t>(i);
    const int size = sizes[i];
    // Large results arrive bare, smaller ones encoded.
    spec.done_bare = [&, size](std::string r) {
      EXPECT_TRUE(r == Tagged(size)) << "result of task " << size << " differs";
      std::lock_guard<std::mutex> lock(mu);
      if (--left == 0) all_done.Notify();
    };
    spec.done = [&, size](absl::StatusOr<std::string> r) {
      if (!r.ok()) {
        ADD_FAILURE() << r.status();
      } else {
        absl::StatusOr<std::vector<std::string>> v =
            Decode<std::vector<std::string>>(*r);
        EXPECT_TRUE(v.ok() && v->size() == 1 && (*v)[0] == Tagged(size))
            << "result of task " << size << " differs";
      }
      std::lock_guard<std::mutex> lock(mu);
      if (--left == 0) all_done.Notify();
    };
    specs.push_back(std::move(spec));
  }
  ASSERT_TRUE(core.Submit(std::move(specs)).ok());
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  *through_ring = t->results_through_ring();
  core.Close();
  EXPECT_TRUE(core.Join().ok());
}

// Large results go through the worker's ring; those that find it full, or
// are larger than it, come over the socket; all arrive intact and in place.
TEST(ForkTransportTest, LargeResultsThroughTheRingAndPastIt) {
  testing::LeakCheck leaks;
  std::vector<int> sizes;
  for (int i = 0; i < 120; ++i) {
    sizes.push_back(static_cast<int>(kBareStringMin) + (i * 7919) % 150000);
  }
  sizes.push_back(300000);  // larger than the ring
  sizes.push_back(100);     // small: encoded, in a batch
  uint64_t through_ring = 0;
  RunTagged(sizes, 2, 256 * 1024, &through_ring);
  EXPECT_GT(through_ring, 0u);
  EXPECT_LT(through_ring, sizes.size() - 1);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ForkTransportTest, WithoutARingLargeResultsComeOverTheSocket) {
  testing::LeakCheck leaks;
  uint64_t through_ring = 1;
  RunTagged({1 << 20, 70000, 1 << 20}, 1, 0, &through_ring);
  EXPECT_EQ(through_ring, 0u);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

// A "worker" that answers each task with a ring record lying outside its
// ring, as a broken or hostile worker might: without having sent a ring,
// after sending a pipe as its ring, or with a real ring.
enum class Lie { kNoRing, kPipeAsRing, kOutsideTheRing };

class LyingLauncher : public WorkerLauncher {
 public:
  explicit LyingLauncher(Lie lie) : lie_(lie) {}

  absl::StatusOr<LaunchedWorker> Launch() override {
    absl::StatusOr<FdPair> pair = MakeSocketPair();
    if (!pair.ok()) return pair.status();
    void* page = mmap(nullptr, sizeof(std::atomic<uint64_t>),
                      PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap");
    pid_t pid = fork();
    if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
    if (pid == 0) {
      pair->read.reset();
      Lies(pair->write.get());
      _exit(0);
    }
    pair->write.reset();
    LaunchedWorker w;
    w.pid = pid;
    w.sock = std::move(pair->read);
    w.slot = new (page) std::atomic<uint64_t>(0);
    w.reap = [pid] {
      absl::StatusOr<int> code = WaitPid(pid);
      return code.ok() ? *code : 255;
    };
    return w;
  }

 private:
  // Frames as fork_transport.h describes them.
  static std::string Frame(uint32_t word, uint64_t task, std::string payload) {
    std::string f(16, '\0');
    uint32_t len = static_cast<uint32_t>(payload.size());
    std::memcpy(&f[0], &len, 4);
    std::memcpy(&f[4], &word, 4);
    std::memcpy(&f[8], &task, 8);
    return f + payload;
  }

  void Lies(int fd) {
    absl::StatusOr<ResultRing> ring = ResultRing::Create(1 << 16);
    absl::StatusOr<FdPair> pipe = MakePipe();
    if (!ring.ok() || !pipe.ok()) return;
    const int sent_fd = lie_ == Lie::kPipeAsRing ? pipe->read.get() : ring->fd();
    if (lie_ != Lie::kNoRing &&
        !SendWithFd(fd, Frame(5, 0, ""), sent_fd).ok()) {  // kRingFd
      return;
    }
    char header[16];
    while (ReadExact(fd, header, sizeof header).ok()) {
      uint32_t len;
      std::memcpy(&len, header, 4);
      std::string body(len, '\0');
      if (!ReadExact(fd, &body[0], len).ok()) return;
      uint64_t task;
      std::memcpy(&task, header + 8, 8);
      std::string record(RingRecord::kEncodedSize, '\0');
      RingRecord{1 << 20, 100, (1 << 20) + 100}.EncodeTo(&record[0]);
      if (!WriteAll(fd, Frame(4, task, record)).ok()) return;  // kResultOkRing
    }
  }

  const Lie lie_;
};

TEST(ForkTransportTest, AWorkerSendingABadRingRecordFailsItsTaskAndEnds) {
  for (Lie lie : {Lie::kNoRing, Lie::kPipeAsRing, Lie::kOutsideTheRing}) {
    SCOPED_TRACE(static_cast<int>(lie));
    testing::LeakCheck leaks;
    {
      auto table = std::make_unique<FunctionTable>();
      table->Add(std::make_shared<CallRunner<int (*)(int), int, false>>(&SleepMs));
      ForkTransportOptions options;
      options.launcher = std::make_shared<LyingLauncher>(lie);
      absl::StatusOr<std::unique_ptr<ForkTransport>> transport =
          ForkTransport::Create(table.get(), options);
      ASSERT_TRUE(transport.ok()) << transport.status();
      Core core(CoreOptions{.processes = 1}, std::move(table),
                *std::move(transport));
      ASSERT_TRUE(core.Start().ok());
      const std::vector<int64_t> first = core.WorkerPids();
      absl::Notification done;
      absl::StatusOr<std::string> got;
      Core::TaskSpec spec;
      spec.function = 0;
      spec.payload = Encode(std::vector<int>{0});
      spec.done = [&](absl::StatusOr<std::string> r) {
        got = std::move(r);
        done.Notify();
      };
      ASSERT_TRUE(core.Submit({std::move(spec)}).ok());
      ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
      EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
      EXPECT_TRUE(absl::StrContains(got.status().message(), "sent a bad result"))
          << got.status();
      // The liar is killed and replaced.
      EXPECT_TRUE(testing::Eventually(
          [&] { return core.WorkerPids() != first; }, absl::Seconds(1)));
      core.Close();
      (void)core.Join();  // the liar's end is reported as a lost worker
    }
    EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
  }
}

// A thread that waits for a result polls the workers itself ("drives", see
// Core::Drive), and while drivers keep coming the handler thread leaves the
// results to them. These tests check that no result is left unread when
// the pattern changes.
int Square(int x) { return x * x; }
int Die(int) {
  raise(SIGKILL);
  return 0;
}

class DriveTest : public ::testing::Test {
 protected:
  void Start(int processes) {
    auto table = std::make_unique<FunctionTable>();
    table->Add(std::make_shared<CallRunner<int (*)(int), int, false>>(&Square));
    table->Add(std::make_shared<CallRunner<int (*)(int), int, false>>(&SleepMs));
    table->Add(std::make_shared<CallRunner<int (*)(int), int, false>>(&Die));
    absl::StatusOr<std::unique_ptr<ForkTransport>> transport =
        ForkTransport::Create(table.get(), ForkTransportOptions());
    ASSERT_TRUE(transport.ok()) << transport.status();
    core_ = std::make_unique<Core>(CoreOptions{.processes = processes},
                                   std::move(table), *std::move(transport));
    ASSERT_TRUE(core_->Start().ok());
  }
  // Submits fn(x); the result lands in *out, then *done is notified.
  void Submit(uint32_t fn, int x, absl::StatusOr<int>* out,
              absl::Notification* done) {
    Core::TaskSpec spec;
    spec.function = fn;
    spec.payload = Encode(std::vector<int>{x});
    spec.done = [out, done](absl::StatusOr<std::string> r) {
      if (r.ok()) {
        absl::StatusOr<std::vector<int>> v = Decode<std::vector<int>>(*r);
        *out = v.ok() ? absl::StatusOr<int>((*v)[0]) : v.status();
      } else {
        *out = r.status();
      }
      done->Notify();
    };
    ASSERT_TRUE(core_->Submit({std::move(spec)}).ok());
  }
  // Waits as AsyncResult::Get() does: drive, else sleep on the result.
  bool Wait(absl::Notification* done) {
    core_->Drive([done] { return done->HasBeenNotified(); }, absl::Seconds(10));
    return done->WaitForNotificationWithTimeout(absl::Seconds(10));
  }
  void Stop() {
    core_->Close();
    EXPECT_TRUE(core_->Join().ok());
    core_.reset();
  }

  std::unique_ptr<Core> core_;
};

TEST_F(DriveTest, RoundTripsThenAResultNobodyDrivesFor) {
  testing::LeakCheck leaks;
  Start(1);
  for (int i = 0; i < 50; ++i) {
    absl::StatusOr<int> r;
    absl::Notification done;
    Submit(0, i, &r, &done);
    ASSERT_TRUE(Wait(&done));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, i * i);
  }
  // Now only a callback waits: the handler must take the results back.
  absl::StatusOr<int> r;
  absl::Notification done;
  Submit(0, 9, &r, &done);
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 81);
  Stop();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST_F(DriveTest, ADriverGetsTheResultOfAReplacementWorker) {
  testing::LeakCheck leaks;
  Start(1);
  absl::StatusOr<int> lost;
  absl::Notification lost_done;
  Submit(2, 0, &lost, &lost_done);  // its worker dies
  ASSERT_TRUE(Wait(&lost_done));
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  // The next task runs on the replacement, which the handler forks while
  // this thread already drives.
  absl::StatusOr<int> r;
  absl::Notification done;
  Submit(0, 5, &r, &done);
  ASSERT_TRUE(Wait(&done));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 25);
  Stop();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST_F(DriveTest, AThreadWaitingBesideADriverGetsItsResult) {
  testing::LeakCheck leaks;
  Start(2);
  absl::StatusOr<int> slow;
  absl::Notification slow_done;
  Submit(1, 300, &slow, &slow_done);
  std::thread driver([&] { EXPECT_TRUE(Wait(&slow_done)); });
  absl::StatusOr<int> r;
  absl::Notification done;
  Submit(0, 7, &r, &done);
  EXPECT_TRUE(Wait(&done));  // kBusy while the other thread drives: sleeps
  driver.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 49);
  ASSERT_TRUE(slow.ok()) << slow.status();
  EXPECT_EQ(*slow, 300);
  Stop();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace pool_internal
}  // namespace mp
