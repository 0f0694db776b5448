#include "pool/pool.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"

namespace mp {
namespace {

int Square(int x) { return x * x; }
int Add(int a, int b) { return a + b; }
int ThrowOn13(int x) {
  if (x == 13) throw std::runtime_error("unlucky 13");
  return x;
}
int KillSelfOn(int x) {
  if (x == 5) raise(SIGKILL);
  return x;
}
int SegfaultOn5(int x) {
  if (x == 5) raise(SIGSEGV);
  return x;
}
int AbortOn5(int x) {
  if (x == 5) abort();
  return x;
}
int ExitOn5(int x) {
  if (x == 5) _exit(3);
  return x;
}
int OomOn5(int x) {
  if (x == 5) {
    struct rlimit rl = {64 << 20, 64 << 20};
    setrlimit(RLIMIT_AS, &rl);
    std::vector<std::string> hog;
    for (;;) hog.emplace_back(1 << 20, 'x');  // bad_alloc -> task failure
  }
  return x;
}
int Pid(int) { return static_cast<int>(getpid()); }
int SleepMs(int ms) {
  absl::SleepFor(absl::Milliseconds(ms));
  return ms;
}

PoolOptions Opts(int n) {
  PoolOptions o;
  o.processes = n;
  return o;
}

std::vector<int> Range(int n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(PoolTest, MapSquaresInOrder) {
  testing::LeakCheck leaks;
  {
    Pool pool(Opts(2));
    ASSERT_TRUE(pool.status().ok()) << pool.status();
    for (int chunksize : {0, 1, 7, 1000}) {
      absl::StatusOr<std::vector<int>> r = pool.Map(Square, Range(100), chunksize);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->size(), 100u);
      for (int i = 0; i < 100; ++i) EXPECT_EQ((*r)[i], i * i);
    }
    absl::StatusOr<std::vector<int>> empty = pool.Map(Square, std::vector<int>{});
    ASSERT_TRUE(empty.ok());
    EXPECT_TRUE(empty->empty());
    pool.Close();
    EXPECT_TRUE(pool.Join().ok());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolTest, LambdasWithCapturesAndStrings) {
  testing::LeakCheck leaks;
  {
    Pool pool(Opts(2));
    std::string prefix = "item-";
    auto r = pool.Map([prefix](int x) { return prefix + std::to_string(x); },
                      Range(5));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)[3], "item-3");
    int offset = 100;
    auto r2 = pool.Map([offset](int x) { return x + offset; }, Range(3));
    ASSERT_TRUE(r2.ok()) << r2.status();
    EXPECT_EQ((*r2)[2], 102);
    auto r3 = pool.Map([](int x) { return x - 1; }, Range(3));
    ASSERT_TRUE(r3.ok()) << r3.status();
    EXPECT_EQ((*r3)[0], -1);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolTest, StarmapApplyAndApplyAsync) {
  testing::LeakCheck leaks;
  {
    Pool pool(Opts(2));
    std::vector<std::tuple<int, int>> pairs = {{1, 2}, {3, 4}, {5, 6}};
    auto s = pool.Starmap(Add, pairs);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(*s, (std::vector<int>{3, 7, 11}));
    auto a = pool.Apply(Add, 20, 22);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(*a, 42);
    AsyncResult<int> r = pool.ApplyAsync(Square, 9);
    EXPECT_EQ(r.Get(), 81);
    EXPECT_TRUE(r.Ready());
    EXPECT_TRUE(r.Successful());
    auto v = pool.Apply([] { return; });
    EXPECT_TRUE(v.ok()) << v.status();
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolTest, ApplyAsyncCallbacks) {
  Pool pool(Opts(1));
  std::atomic<int> got{0};
  std::atomic<int> errors{0};
  AsyncResult<int> ok = pool.ApplyAsync(
      Square, std::make_tuple(6),
      AsyncCallbacks<int>{[&](const int& v) { got = v; },
                          [&](const absl::Status&) { ++errors; }});
  ASSERT_TRUE(ok.Wait().ok());
  AsyncResult<int> bad = pool.ApplyAsync(
      ThrowOn13, std::make_tuple(13),
      AsyncCallbacks<int>{[&](const int&) {},
                          [&](const absl::Status&) { ++errors; }});
  EXPECT_FALSE(bad.Wait().ok());
  EXPECT_FALSE(bad.Successful());
  EXPECT_THROW(bad.Get(), RemoteError);
  pool.Close();
  ASSERT_TRUE(pool.Join().ok());
  EXPECT_EQ(got.load(), 36);
  EXPECT_EQ(errors.load(), 1);
}

TEST(PoolTest, ExceptionReportsTypeWhatPidAndFirstIndex) {
  Pool pool(Opts(2));
  std::vector<int> xs = Range(40);
  xs[30] = 13;  // fails at index 13 and at index 30
  auto r = pool.Map(ThrowOn13, xs, 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnknown);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "task 13 failed in worker pid"))
      << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "std::runtime_error: unlucky 13"))
      << r.status();
  EXPECT_EQ(std::string(*r.status().GetPayload("mp.index")), "13");
  EXPECT_TRUE(r.status().GetPayload("mp.pid").has_value());
  try {
    pool.ApplyAsync(ThrowOn13, 13).Get();
    FAIL() << "no throw";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.status().code(), absl::StatusCode::kUnknown);
  }
  // Still usable.
  auto ok = pool.Map(Square, Range(10));
  ASSERT_TRUE(ok.ok()) << ok.status();
}

class WorkerDeathTest : public ::testing::TestWithParam<int (*)(int)> {};

TEST_P(WorkerDeathTest, FailsOnlyTheTaskItHeldAndReplacesTheWorker) {
  testing::LeakCheck leaks;
  {
    Pool pool(Opts(2));
    absl::Time start = absl::Now();
    auto results = pool.Map(GetParam(), Range(20), 1);
    ASSERT_FALSE(results.ok());
    EXPECT_LT(absl::Now() - start, absl::Seconds(10));
    EXPECT_EQ(std::string(*results.status().GetPayload("mp.index")), "5")
        << results.status();
    // Every other task finished: map them one by one.
    std::vector<AsyncResult<int>> rs;
    for (int i = 0; i < 20; ++i) rs.push_back(pool.ApplyAsync(GetParam(), i));
    for (int i = 0; i < 20; ++i) {
      absl::StatusOr<int> v = rs[i].Wait(absl::Seconds(20));
      if (i == 5) {
        ASSERT_FALSE(v.ok());
        EXPECT_TRUE(absl::StrContains(v.status().message(), "pid")) << v.status();
      } else {
        ASSERT_TRUE(v.ok()) << i << ": " << v.status();
        EXPECT_EQ(*v, i);
      }
    }
    EXPECT_GE(pool.workers_started(), 3);
    pool.Close();
    ASSERT_TRUE(pool.Join().ok());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

INSTANTIATE_TEST_SUITE_P(Deaths, WorkerDeathTest,
                         ::testing::Values(&KillSelfOn, &SegfaultOn5,
                                           &AbortOn5, &ExitOn5));

TEST(PoolTest, SigkillNamesPidAndSignal) {
  Pool pool(Opts(1));
  auto r = pool.Apply(KillSelfOn, 5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(),
                                "worker lost: pid "))
      << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "killed by signal 9"))
      << r.status();
  // The waiting thread saw the death itself; the handler still replaces it.
  auto again = pool.Apply(Square, 4);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 16);
}

TEST(PoolTest, ManyThreadsWaitingAtOnce) {
  testing::LeakCheck leaks;
  {
    Pool pool(Opts(2));
    std::atomic<int> wrong{0};
    std::atomic<int> called{0};
    // Both calls below once first: a function new to the pool makes it
    // replace its (fork) workers, forking from its handler thread. Doing
    // that while six threads allocate is safe with glibc's malloc, whose
    // fork() handlers keep its locks consistent, but not under GCC 12's
    // AddressSanitizer, whose allocator has none: a worker forked while
    // another thread held an allocator lock hangs in its first allocation
    // (seen in stress runs of this test under ASan; none in ~4 900 runs
    // without it). This test is about the waiting threads, not that.
    ASSERT_TRUE(pool.ApplyAsync(Square, 1).Wait(absl::Seconds(30)).ok());
    ASSERT_TRUE(pool.ApplyAsync(Square, std::make_tuple(1),
                                AsyncCallbacks<int>{[&](const int&) {}, {}})
                    .Wait(absl::Seconds(30))
                    .ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 150; ++i) {
          int x = t * 1000 + i;
          if (i % 10 == 0) {
            pool.ApplyAsync(Square, std::make_tuple(x),
                            AsyncCallbacks<int>{[&](const int&) { ++called; }, {}});
          }
          absl::StatusOr<int> v = pool.ApplyAsync(Square, x).Wait(absl::Seconds(30));
          if (!v.ok() || *v != x * x) ++wrong;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong.load(), 0);
    pool.Close();
    ASSERT_TRUE(pool.Join().ok());
    EXPECT_EQ(called.load(), 6 * 15);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolTest, CallbackMayWaitForAnotherResult) {
  Pool pool(Opts(2));
  AsyncResult<int> inner = pool.ApplyAsync(SleepMs, 50);
  std::atomic<int> seen{0};
  AsyncResult<int> outer = pool.ApplyAsync(
      Square, std::make_tuple(3),
      AsyncCallbacks<int>{[&](const int&) {
                            absl::StatusOr<int> v = inner.Wait(absl::Seconds(10));
                            seen = v.ok() ? *v : -1;
                          },
                          {}});
  ASSERT_TRUE(outer.Wait(absl::Seconds(20)).ok());
  EXPECT_EQ(seen.load(), 50);
}

TEST(PoolTest, TerminateWakesAWaitingThread) {
  Pool pool(Opts(1));
  AsyncResult<int> r = pool.ApplyAsync(SleepMs, 20000);
  absl::Status got;
  std::thread waiter([&] { got = r.Wait().status(); });
  absl::SleepFor(absl::Milliseconds(100));
  absl::Time start = absl::Now();
  pool.Terminate();
  waiter.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(got.code(), absl::StatusCode::kCancelled);
  ASSERT_TRUE(pool.Join().ok());
}

TEST(PoolTest, IdleWorkerKilledFromOutsideIsReplaced) {
  testing::LeakCheck leaks;
  {
    Pool pool(Opts(2));
    std::vector<int64_t> pids = pool.WorkerPids();
    ASSERT_EQ(pids.size(), 2u);
    ASSERT_EQ(kill(static_cast<pid_t>(pids[0]), SIGKILL), 0);
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (pool.workers_started() < 3 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    EXPECT_EQ(pool.workers_started(), 3);
    auto r = pool.Map(Square, Range(50), 1);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)[7], 49);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

// Workers die with the thread that forked them (PR_SET_PDEATHSIG): a pool
// built by a thread that then exits must keep its workers.
TEST(PoolTest, PoolBuiltByAThreadThatExitsKeepsItsWorkers) {
  testing::LeakCheck leaks;
  {
    std::unique_ptr<Pool> pool;
    std::thread([&pool] { pool = std::make_unique<Pool>(Opts(2)); }).join();
    ASSERT_TRUE(pool->status().ok()) << pool->status();
    // Tasks that last: a worker killed after the thread's exit loses one.
    // (A forked pool's first workers predate every function, so this Map
    // replaces them; fork_transport_test.cc checks that the first workers
    // themselves survive.)
    auto r = pool->Map(SleepMs, std::vector<int>(8, 20), 1);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, std::vector<int>(8, 20));
    r = pool->Map(SleepMs, std::vector<int>(8, 20), 1);
    ASSERT_TRUE(r.ok()) << r.status();
    pool->Close();
    EXPECT_TRUE(pool->Join().ok());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolTest, OutOfMemoryInTaskIsATaskFailure) {
  Pool pool(Opts(1));
  auto r = pool.Apply(OomOn5, 5);
  ASSERT_FALSE(r.ok());
  // Normally the allocation throws std::bad_alloc (a task failure); under
  // AddressSanitizer the runtime itself cannot map memory and kills the
  // worker (worker lost). A kernel OOM kill is a SIGKILL: see
  // SigkillNamesPidAndSignal.
  EXPECT_TRUE(absl::StrContains(r.status().message(), "bad_alloc") ||
              absl::StrContains(r.status().message(), "worker lost"))
      << r.status();
  auto ok = pool.Apply(Square, 3);
  ASSERT_TRUE(ok.ok()) << ok.status();
}

TEST(PoolTest, RetryPolicyRunsALostTaskAgain) {
  PoolOptions o = Opts(1);
  o.retries = 2;
  Pool pool(o);
  // Dies the first time only: a marker file says it already ran.
  std::string marker = ::testing::TempDir() + "/retry_marker_" + std::to_string(getpid());
  unlink(marker.c_str());
  auto r = pool.Apply(
      [marker](int x) {
        if (access(marker.c_str(), F_OK) != 0) {
          FILE* f = fopen(marker.c_str(), "w");
          if (f) fclose(f);
          raise(SIGKILL);
        }
        return x * 2;
      },
      21);
  unlink(marker.c_str());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 42);
}

TEST(PoolTest, MaxTasksPerChildRecyclesWorkers) {
  testing::LeakCheck leaks;
  {
    PoolOptions o = Opts(2);
    o.max_tasks_per_child = 3;
    Pool pool(o);
    auto pids = pool.Map(Pid, Range(60), 1);
    ASSERT_TRUE(pids.ok()) << pids.status();
    std::map<int, int> per_pid;
    for (int p : *pids) ++per_pid[p];
    for (auto& [pid, n] : per_pid) EXPECT_LE(n, 3) << pid;
    EXPECT_GE(per_pid.size(), 20u);
    pool.Close();
    ASSERT_TRUE(pool.Join().ok());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolTest, InitializerRunsInEachWorker) {
  PoolOptions o = Opts(2);
  o.SetInitializer([](int v) { setenv("MP_POOL_INIT", std::to_string(v).c_str(), 1); }, 7);
  Pool pool(o);
  auto r = pool.Apply([] { return std::string(getenv("MP_POOL_INIT") ? getenv("MP_POOL_INIT") : ""); });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "7");
}

TEST(PoolTest, FailingInitializerBreaksThePoolWithoutHanging) {
  testing::LeakCheck leaks;
  {
    PoolOptions o = Opts(2);
    o.initializer = [] { return absl::InternalError("no database"); };
    Pool pool(o);
    auto r = pool.Map(Square, Range(10));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
    EXPECT_TRUE(absl::StrContains(r.status().message(), "no database")) << r.status();
    auto again = pool.Apply(Square, 1);
    EXPECT_FALSE(again.ok());
    pool.Close();
    ASSERT_TRUE(pool.Join().ok());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolTest, ThrowingInitializerBreaksThePool) {
  PoolOptions o = Opts(1);
  o.initializer = []() -> absl::Status { throw std::logic_error("bad init"); };
  Pool pool(o);
  auto r = pool.Apply(Square, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "bad init")) << r.status();
}

TEST(PoolTest, TerminateWhileTasksInFlight) {
  testing::LeakCheck leaks;
  {
    Pool pool(Opts(2));
    AsyncResult<std::vector<int>> r = pool.MapAsync(SleepMs, std::vector<int>(20, 2000), 1);
    absl::SleepFor(absl::Milliseconds(100));
    absl::Time start = absl::Now();
    pool.Terminate();
    ASSERT_TRUE(pool.Join().ok());
    EXPECT_LT(absl::Now() - start, absl::Seconds(5));
    auto v = r.Wait(absl::Seconds(5));
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), absl::StatusCode::kCancelled);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolTest, DestructorTerminates) {
  testing::LeakCheck leaks;
  AsyncResult<int> r;
  {
    Pool pool(Opts(1));
    r = pool.ApplyAsync(SleepMs, 10000);
  }
  EXPECT_EQ(r.Wait(absl::Seconds(1)).status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolTest, MisuseGivesClearErrors) {
  Pool pool(Opts(1));
  EXPECT_EQ(pool.Join().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool.Map(Square, Range(3), -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  pool.Close();
  EXPECT_EQ(pool.Map(Square, Range(3)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool.Apply(Square, 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(pool.Join().ok());
  AsyncResult<int> empty;
  EXPECT_EQ(empty.Wait().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(empty.Ready());
}

TEST(PoolTest, BadOptionsAreReported) {
  PoolOptions o = Opts(1);
  o.start_method = "posix_spawn";  // spawn and forkserver: start_method_test
  Pool unknown(o);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.Map(Square, Range(2)).status().code(),
            absl::StatusCode::kInvalidArgument);
  Pool negative(Opts(-1));
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  PoolOptions m = Opts(1);
  m.max_tasks_per_child = -2;
  EXPECT_EQ(Pool(m).status().code(), absl::StatusCode::kInvalidArgument);
  PoolOptions w = Opts(1);
  w.max_inflight_per_worker = -1;
  EXPECT_EQ(Pool(w).status().code(), absl::StatusCode::kInvalidArgument);
  PoolOptions r = Opts(1);
  r.retries = -1;
  EXPECT_EQ(Pool(r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PoolTest, ImapIsOrderedLazyAndBounded) {
  testing::LeakCheck leaks;
  {
    Pool pool(Opts(2));
    // An input iterator that counts how far it was read.
    struct Counting {
      using iterator_category = std::input_iterator_tag;
      using value_type = int;
      using difference_type = std::ptrdiff_t;
      using pointer = const int*;
      using reference = int;
      int i;
      std::atomic<int>* read;
      int operator*() const { return i; }
      Counting& operator++() {
        ++i;
        read->store(std::max(read->load(), i));
        return *this;
      }
      bool operator!=(const Counting& o) const { return i != o.i; }
      bool operator==(const Counting& o) const { return i == o.i; }
    };
    std::atomic<int> read{0};
    auto it = pool.Imap(Square, Counting{0, &read}, Counting{1000, &read});
    // Nothing consumed yet: at most the window (4 * 2 chunks of 1) was read.
    EXPECT_LE(read.load(), 8);
    for (int i = 0; i < 1000; ++i) {
      std::optional<absl::StatusOr<int>> v = it.Next();
      ASSERT_TRUE(v.has_value());
      ASSERT_TRUE(v->ok()) << v->status();
      EXPECT_EQ(**v, i * i);
      EXPECT_LE(read.load(), i + 1 + 8);
    }
    EXPECT_FALSE(it.Next().has_value());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolTest, ImapUnorderedYieldsEverythingAndErrors) {
  Pool pool(Opts(2));
  std::vector<int> xs = Range(50);
  auto it = pool.ImapUnordered(ThrowOn13, xs, 4);
  std::vector<int> seen;
  int errors = 0;
  while (auto v = it.Next()) {
    if (v->ok()) {
      seen.push_back(**v);
    } else {
      ++errors;
    }
  }
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(seen.size(), 46u);  // the chunk 12..15 failed as a whole
  auto bad = pool.Imap(Square, xs, 0);
  auto first = bad.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(bad.Next().has_value());
}

TEST(PoolTest, WaitTimesOut) {
  Pool pool(Opts(1));
  AsyncResult<int> r = pool.ApplyAsync(SleepMs, 3000);
  EXPECT_EQ(r.Wait(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(r.Ready());
  EXPECT_FALSE(r.Successful());
}

TEST(PoolTest, LargeResults) {
  Pool pool(Opts(2));
  auto r = pool.Map([](int n) { return std::string(n, 'z'); },
                    std::vector<int>{1 << 20, 3 << 20, 10}, 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[1].size(), 3u << 20);
  EXPECT_EQ((*r)[1][12345], 'z');
  std::vector<std::string> big = {std::string(2 << 20, 'a'), "b"};
  auto sizes = pool.Map([](const std::string& s) { return s.size(); }, big, 1);
  ASSERT_TRUE(sizes.ok()) << sizes.status();
  EXPECT_EQ((*sizes)[0], 2u << 20);
}

// The rvalue DecodeResults<std::string> takes the received buffer as the
// result; it must agree with the codec on every input, good or bad.
// A large std::string that is a chunk's only result travels bare (no codec
// header, written from the result itself, read into its final buffer);
// other results are encoded. Every path must give the same values.
std::string Pattern(int n) {
  std::string s(static_cast<size_t>(n), '\0');
  for (int i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + n) % 26);
  return s;
}

TEST(PoolTest, LargeStringResultsBareOrEncodedAreExact) {
  testing::LeakCheck leaks;
  {
    Pool pool(Opts(2));
    const int kMin = static_cast<int>(pool_internal::kBareStringMin);
    std::vector<int> sizes = {0,        1,           kMin - 1,  kMin,
                              kMin + 1, 200 * 1024,  256 * 1024, 1 << 20,
                              (3 << 20) + 5};
    std::vector<std::string> want;
    for (int n : sizes) want.push_back(Pattern(n));
    for (int chunksize : {1, 2, 0}) {
      auto r = pool.Map(Pattern, sizes, chunksize);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_TRUE(*r == want) << "chunksize " << chunksize;
    }
    absl::StatusOr<std::string> one = pool.Apply(Pattern, 1 << 20);
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_TRUE(*one == Pattern(1 << 20));
    int i = 0;
    for (auto it = pool.Imap(Pattern, sizes); auto x = it.Next(); ++i) {
      ASSERT_TRUE(x->ok()) << x->status();
      EXPECT_TRUE(**x == want[i]) << "item " << i;
    }
    EXPECT_EQ(i, static_cast<int>(sizes.size()));
    // A failure next to bare results in the same batch.
    auto failed = pool.Map(
        [](int n) {
          if (n == 7) throw std::runtime_error("seven");
          return Pattern(n);
        },
        std::vector<int>{1 << 20, 7, 1 << 20}, 1);
    ASSERT_FALSE(failed.ok());
    EXPECT_TRUE(absl::StrContains(failed.status().message(), "seven"))
        << failed.status();
    pool.Close();
    EXPECT_TRUE(pool.Join().ok());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

// Large results go through each worker's shared result ring. A worker that
// dies with results of its own in the ring, and its replacement (which
// makes a new ring), must not lose or mix up anyone else's.
TEST(PoolTest, LargeResultsSurviveAWorkerDyingBesideThem) {
  testing::LeakCheck leaks;
  {
    Pool pool(Opts(2));
    std::vector<AsyncResult<std::string>> rs;
    for (int i = 0; i < 40; ++i) {
      rs.push_back(pool.ApplyAsync(
          [](int n) {
            if (n == 13) raise(SIGKILL);
            return Pattern((1 << 20) + n);
          },
          i));
    }
    for (int i = 0; i < 40; ++i) {
      absl::StatusOr<std::string> v = rs[i].Wait(absl::Seconds(30));
      if (i == 13) {
        ASSERT_FALSE(v.ok());
        EXPECT_TRUE(absl::StrContains(v.status().message(), "worker lost"))
            << v.status();
      } else {
        ASSERT_TRUE(v.ok()) << i << ": " << v.status();
        EXPECT_TRUE(*v == Pattern((1 << 20) + i)) << "result " << i;
      }
    }
    EXPECT_GE(pool.workers_started(), 3);
    pool.Close();
    EXPECT_TRUE(pool.Join().ok());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolTest, StringResultDecodedInPlaceAgreesWithTheCodec) {
  using pool_internal::DecodeResults;
  for (const std::vector<std::string>& v : std::vector<std::vector<std::string>>{
           {}, {""}, {"x"}, {std::string(300000, 'q')}, {"a", "bc"}}) {
    std::string bytes = Encode(v);
    auto slow = DecodeResults<std::string>(absl::string_view(bytes));
    auto fast = DecodeResults<std::string>(std::string(bytes));
    ASSERT_TRUE(slow.ok()) << slow.status();
    ASSERT_TRUE(fast.ok()) << fast.status();
    EXPECT_EQ(*fast, v);
    EXPECT_EQ(*slow, v);
    // Truncated, extended or corrupted bytes fail both ways.
    for (std::string bad : {bytes.substr(0, bytes.size() - 1), bytes + "!",
                            std::string("\xff") + bytes.substr(1)}) {
      EXPECT_FALSE(DecodeResults<std::string>(absl::string_view(bad)).ok());
      EXPECT_FALSE(DecodeResults<std::string>(std::move(bad)).ok());
    }
  }
  // A result of another type is not taken for a string.
  std::string ints = Encode(std::vector<int64_t>{1, 2});
  EXPECT_FALSE(DecodeResults<std::string>(std::string(ints)).ok());
}

}  // namespace
}  // namespace mp
