// The pool and the executor with the spawn and forkserver start methods:
// workers that are not forked from the (multi-threaded) test process, tasks
// that name registered functions.

#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "pool/executor.h"
#include "pool/internal/remote_worker.h"
#include "pool/pool.h"
#include "process/leak_check.h"
#include "process/process.h"
#include "process/register.h"

namespace mp {
namespace {

// ---- registered task functions (they run before main in spawned workers:
// no globals with dynamic initialisers) -----------------------------------

int Square(int x) { return x * x; }
MP_REGISTER(Square);
int Add(int a, int b) { return a + b; }
MP_REGISTER(Add);
std::string Greet(const std::string& name, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += "hi " + name + ";";
  return out;
}
MP_REGISTER(Greet);
int64_t Pid(int) { return getpid(); }
MP_REGISTER(Pid);
int ThrowOn3(int x) {
  if (x == 3) throw std::runtime_error("three is bad");
  return x;
}
MP_REGISTER(ThrowOn3);
int KillSelfOn5(int x) {
  if (x == 5) raise(SIGKILL);
  return x;
}
MP_REGISTER(KillSelfOn5);
void Nothing(int) {}
MP_REGISTER(Nothing);
int SleepMs(int ms) {
  absl::SleepFor(absl::Milliseconds(ms));
  return ms;
}
MP_REGISTER(SleepMs);
int MarkAndSleep(std::string path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f != nullptr) std::fclose(f);
  absl::SleepFor(absl::Seconds(60));
  return 0;
}
MP_REGISTER(MarkAndSleep);
// Large results (they travel through the worker's shared result ring, or
// over its socket when that is full): `n` KiB, each KiB saying n and where.
std::string KiB(int n) {
  std::string s(static_cast<size_t>(n) * 1024, '.');
  for (int k = 0; k < n; ++k) {
    std::snprintf(&s[static_cast<size_t>(k) * 1024], 24, "%d:%d", n, k);
  }
  return s;
}
MP_REGISTER(KiB);
constexpr auto kTriple = [](int x) { return 3 * x; };
MP_REGISTER_AS("Triple", kTriple);

// Initializers. `g_offset` is constant-initialised, so usable before main.
int g_offset = 0;
void SetOffset(int v) { g_offset = v; }
MP_REGISTER(SetOffset);
int PlusOffset(int x) { return x + g_offset; }
MP_REGISTER(PlusOffset);
absl::Status FailInit(std::string why) {
  return absl::PermissionDeniedError(why);
}
MP_REGISTER(FailInit);

absl::Status SetOffsetOrFail(int v) {
  if (v < 0) throw std::invalid_argument("negative offset");
  g_offset = v;
  return absl::OkStatus();
}
MP_REGISTER(SetOffsetOrFail);

// Two functions under one name: a worker could not tell them apart.
int DupA(int x) { return x; }
int DupB(int x) { return -x; }
MP_REGISTER_AS("Dup", DupA);
MP_REGISTER_AS("Dup", DupB);

// Not registered.
int Unregistered(int x) { return x; }
void UnregisteredInit(int) {}

std::vector<int> Range(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

class StartMethodTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    // The forkserver is a long-lived child: start it before the leak check.
    if (std::string(GetParam()) == "forkserver") {
      ASSERT_TRUE(StartForkServer().ok());
    }
    leaks_ = std::make_unique<testing::LeakCheck>();
  }
  void TearDown() override { EXPECT_TRUE(leaks_->Verify().ok()); }

  PoolOptions Opts(int n) {
    PoolOptions o;
    o.processes = n;
    o.start_method = GetParam();
    return o;
  }

  std::unique_ptr<testing::LeakCheck> leaks_;
};

TEST_P(StartMethodTest, LargeResultsArriveIntact) {
  Pool pool(Opts(2));
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  std::vector<int> sizes = {1024, 64, 3000, 65, 9000, 1, 2048, 512, 4096, 100};
  absl::StatusOr<std::vector<std::string>> got = pool.Map(KiB, sizes, 1);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE((*got)[i] == KiB(sizes[i])) << "result " << i << " differs";
  }
}

TEST_P(StartMethodTest, MapStarmapApplyImap) {
  Pool pool(Opts(2));
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  absl::StatusOr<std::vector<int>> squares = pool.Map(Square, Range(50));
  ASSERT_TRUE(squares.ok()) << squares.status();
  for (int i = 0; i < 50; ++i) EXPECT_EQ((*squares)[i], i * i);

  std::vector<std::tuple<int, int>> pairs = {{1, 2}, {3, 4}, {5, 6}};
  absl::StatusOr<std::vector<int>> sums = pool.Starmap(Add, pairs);
  ASSERT_TRUE(sums.ok()) << sums.status();
  EXPECT_EQ(*sums, (std::vector<int>{3, 7, 11}));

  // Arguments converted to the parameter types (long -> int), a string
  // result.
  AsyncResult<std::string> g = pool.ApplyAsync(Greet, std::string("bob"), 2L);
  absl::StatusOr<std::string> gs = g.Wait(absl::Seconds(60));
  ASSERT_TRUE(gs.ok()) << gs.status();
  EXPECT_EQ(*gs, "hi bob;hi bob;");
  EXPECT_EQ(*pool.Apply(Add, 20, 22), 42);

  std::vector<int> xs = Range(20);
  std::vector<int> got;
  auto it = pool.Imap(Square, xs, 3);
  while (auto v = it.Next(absl::Seconds(60))) {
    ASSERT_TRUE(v->ok()) << v->status();
    got.push_back(**v);
  }
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(got[i], i * i);

  std::multiset<int> unordered;
  auto un = pool.ImapUnordered(Square, xs);
  while (auto v = un.Next(absl::Seconds(60))) {
    ASSERT_TRUE(v->ok()) << v->status();
    unordered.insert(**v);
  }
  EXPECT_EQ(unordered.size(), 20u);
  EXPECT_EQ(unordered.count(361), 1u);

  // void results.
  absl::StatusOr<std::vector<std::monostate>> none = pool.Map(Nothing, Range(5));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->size(), 5u);

  // Workers are not this process nor forks of it that share its table: the
  // pids are of the start method's children.
  for (int64_t pid : pool.WorkerPids()) EXPECT_NE(pid, getpid());
  pool.Close();
  EXPECT_TRUE(pool.Join().ok());
}

TEST_P(StartMethodTest, RegisteredCapturelessLambda) {
  Pool pool(Opts(1));
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  absl::StatusOr<std::vector<int>> r = pool.Map(kTriple, Range(4));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (std::vector<int>{0, 3, 6, 9}));
  pool.Close();
  EXPECT_TRUE(pool.Join().ok());
}

TEST_P(StartMethodTest, UnregisteredCallablesAreRefused) {
  Pool pool(Opts(1));
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  absl::Status s = pool.Map(Unregistered, Range(3)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "MP_REGISTER")) << s;

  int k = 7;
  auto capturing = [k](int x) { return x + k; };
  EXPECT_EQ(pool.Apply(capturing, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool.ApplyAsync(capturing, 1).Wait(absl::Seconds(5)).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto unregistered_lambda = [](int x) { return x; };
  EXPECT_EQ(pool.Map(unregistered_lambda, Range(2)).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto it = pool.Imap(capturing, Range(3));
  auto first = it.Next(absl::Seconds(5));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(it.Next(absl::Seconds(5)).has_value());

  // The pool is still fine.
  EXPECT_EQ(*pool.Apply(Square, 9), 81);
  pool.Close();
  EXPECT_TRUE(pool.Join().ok());
}

TEST_P(StartMethodTest, TaskExceptionIsReported) {
  Pool pool(Opts(2));
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  absl::Status s = pool.Map(ThrowOn3, Range(6), 1).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_TRUE(absl::StrContains(s.message(), "task 3 failed in worker pid"))
      << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "std::runtime_error: three is bad"))
      << s;
  EXPECT_EQ(*pool.Apply(Square, 3), 9);
}

TEST_P(StartMethodTest, WorkerKilledMidTaskIsLostAndReplaced) {
  Pool pool(Opts(2));
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  absl::Status s = pool.Map(KillSelfOn5, Range(10), 1).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "task 5 lost")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "killed by signal 9")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "worker lost: pid ")) << s;
  // The pool goes on with a replacement worker.
  absl::StatusOr<std::vector<int>> r = pool.Map(Square, Range(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[9], 81);
  EXPECT_GE(pool.workers_started(), 3);
  pool.Close();
  EXPECT_TRUE(pool.Join().ok());
}

TEST_P(StartMethodTest, WorkerKilledFromOutside) {
  Pool pool(Opts(1));
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  std::string mark = absl::StrCat(::testing::TempDir(), "/started_",
                                  GetParam(), "_", getpid());
  ::unlink(mark.c_str());
  AsyncResult<int> r = pool.ApplyAsync(MarkAndSleep, mark);
  // Kill the worker once it runs the task.
  absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (::access(mark.c_str(), F_OK) != 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(::access(mark.c_str(), F_OK), 0) << "the task never started";
  ::unlink(mark.c_str());
  std::vector<int64_t> pids = pool.WorkerPids();
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(::kill(static_cast<pid_t>(pids[0]), SIGKILL), 0);
  absl::StatusOr<int> v = r.Wait(absl::Seconds(60));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable) << v.status();
  EXPECT_TRUE(absl::StrContains(
      v.status().message(),
      absl::StrCat("worker lost: pid ", pids[0], " was killed by signal 9")))
      << v.status();
  // A replacement runs the next task.
  EXPECT_EQ(*pool.Apply(Square, 5), 25);
  EXPECT_NE(pool.WorkerPids(), pids);
  pool.Close();
  EXPECT_TRUE(pool.Join().ok());
}

TEST_P(StartMethodTest, MaxTasksPerChildRecyclesWorkers) {
  PoolOptions o = Opts(1);
  o.max_tasks_per_child = 2;
  Pool pool(o);
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  absl::StatusOr<std::vector<int64_t>> pids = pool.Map(Pid, Range(6), 1);
  ASSERT_TRUE(pids.ok()) << pids.status();
  std::set<int64_t> distinct(pids->begin(), pids->end());
  EXPECT_EQ(distinct.size(), 3u);
  EXPECT_GE(pool.workers_started(), 3);
  pool.Close();
  EXPECT_TRUE(pool.Join().ok());
}

TEST_P(StartMethodTest, RegisteredInitializerWithArguments) {
  PoolOptions o = Opts(2);
  o.SetInitializer(SetOffset, 1000);
  Pool pool(o);
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  absl::StatusOr<std::vector<int>> r = pool.Map(PlusOffset, Range(4));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (std::vector<int>{1000, 1001, 1002, 1003}));
  EXPECT_EQ(g_offset, 0);  // ran in the workers, not here
  pool.Close();
  EXPECT_TRUE(pool.Join().ok());
}

TEST_P(StartMethodTest, FailingInitializerBreaksThePool) {
  PoolOptions o = Opts(2);
  o.SetInitializer(FailInit, "no access");
  Pool pool(o);
  absl::Status s = pool.status().ok() ? pool.Map(Square, Range(4)).status()
                                      : pool.status();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "initializer")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "no access")) << s;
}

TEST_P(StartMethodTest, InitializerReturningStatus) {
  PoolOptions ok = Opts(1);
  ok.SetInitializer(SetOffsetOrFail, 7);
  Pool pool(ok);
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  EXPECT_EQ(*pool.Apply(PlusOffset, 1), 8);
  pool.Close();
  EXPECT_TRUE(pool.Join().ok());

  PoolOptions throws = Opts(1);
  throws.SetInitializer(SetOffsetOrFail, -1);
  Pool broken(throws);
  absl::Status s = broken.status().ok() ? broken.Apply(Square, 2).status()
                                        : broken.status();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "negative offset")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "std::invalid_argument")) << s;
}

TEST_P(StartMethodTest, AmbiguousNameIsRefused) {
  Pool pool(Opts(1));
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  absl::Status s = pool.Map(DupA, Range(2)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "\"Dup\"")) << s;
}

TEST_P(StartMethodTest, InitializerThatCannotBeSentIsRefused) {
  int k = 1;
  PoolOptions a = Opts(1);
  a.SetInitializer([k](int) { (void)k; }, 1);
  Pool capturing(a);
  EXPECT_EQ(capturing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(capturing.status().message(), "initializer"));
  EXPECT_EQ(capturing.Map(Square, Range(2)).status().code(),
            absl::StatusCode::kInvalidArgument);

  PoolOptions b = Opts(1);
  b.SetInitializer(UnregisteredInit, 1);
  EXPECT_EQ(Pool(b).status().code(), absl::StatusCode::kInvalidArgument);

  PoolOptions c = Opts(1);
  c.initializer = [] { return absl::OkStatus(); };
  Pool direct(c);
  EXPECT_EQ(direct.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(direct.status().message(), "SetInitializer"));
}

// Spawn workers are daemons (PR_SET_PDEATHSIG towards the thread that
// started them): a pool built by a thread that then exits keeps them.
TEST_P(StartMethodTest, PoolBuiltByAThreadThatExitsKeepsItsWorkers) {
  std::unique_ptr<Pool> pool;
  std::thread([&] { pool = std::make_unique<Pool>(Opts(2)); }).join();
  ASSERT_TRUE(pool->status().ok()) << pool->status();
  std::vector<int64_t> pids = pool->WorkerPids();
  ASSERT_EQ(pids.size(), 2u);
  auto r = pool->Map(SleepMs, std::vector<int>(8, 20), 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::vector<int>(8, 20));
  EXPECT_EQ(pool->WorkerPids(), pids);
  EXPECT_EQ(pool->workers_started(), 2);
  pool->Close();
  EXPECT_TRUE(pool->Join().ok());
}

TEST_P(StartMethodTest, TerminateCancelsAndReaps) {
  Pool pool(Opts(2));
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  AsyncResult<std::vector<int>> r = pool.MapAsync(SleepMs, std::vector<int>(8, 30000), 1);
  pool.Terminate();
  absl::StatusOr<std::vector<int>> v = r.Wait(absl::Seconds(30));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kCancelled) << v.status();
  EXPECT_TRUE(pool.Join().ok());
  EXPECT_TRUE(pool.WorkerPids().empty());
}

TEST_P(StartMethodTest, DestructorWithBusyWorkersDoesNotHang) {
  absl::Time start = absl::Now();
  {
    Pool pool(Opts(2));
    ASSERT_TRUE(pool.status().ok()) << pool.status();
    pool.ApplyAsync(SleepMs, 60000);
    pool.ApplyAsync(SleepMs, 60000);
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(50));
}

TEST_P(StartMethodTest, Executor) {
  PoolOptions o = Opts(2);
  ProcessPoolExecutor ex(o);
  ASSERT_TRUE(ex.status().ok()) << ex.status();
  Future<int> f = ex.Submit(Add, 2, 3);
  absl::StatusOr<int> v = f.Result(absl::Seconds(60));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 5);
  absl::StatusOr<std::vector<int>> m = ex.Map(Square, Range(5));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, (std::vector<int>{0, 1, 4, 9, 16}));
  int k = 3;
  EXPECT_EQ(ex.Submit([k](int x) { return x * k; }, 2)
                .Result(absl::Seconds(5))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  Future<int> lost = ex.Submit(KillSelfOn5, 5);
  absl::Status s = lost.Result(absl::Seconds(60)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(*ex.Submit(Square, 4).Result(absl::Seconds(60)), 16);
  ex.Shutdown();
}

TEST_P(StartMethodTest, NewFunctionsDoNotRestartWorkers) {
  Pool pool(Opts(2));
  ASSERT_TRUE(pool.status().ok()) << pool.status();
  EXPECT_EQ(*pool.Apply(Square, 2), 4);
  EXPECT_EQ(*pool.Apply(Add, 2, 3), 5);
  EXPECT_EQ(*pool.Apply(kTriple, 2), 6);
  ASSERT_TRUE(pool.Map(PlusOffset, Range(10)).ok());
  // Workers look functions up by name: no replacement for a new one.
  EXPECT_EQ(pool.workers_started(), 2);
  pool.Close();
  EXPECT_TRUE(pool.Join().ok());
}

// A process that connects to the pool's socket without the token cannot
// pose as a worker: the launcher drops it and waits for the real one.
TEST_P(StartMethodTest, StrangerOnTheSocketIsIgnored) {
  absl::StatusOr<StartMethod> method = ParseStartMethod(GetParam());
  ASSERT_TRUE(method.ok());
  absl::StatusOr<std::shared_ptr<pool_internal::RemoteLauncher>> launcher =
      pool_internal::RemoteLauncher::Create(*method, {}, 1 << 20);
  ASSERT_TRUE(launcher.ok()) << launcher.status();
  // Two strangers: one sends a wrong token, one sends nothing and hangs up.
  std::vector<int> strangers;
  for (int i = 0; i < 2; ++i) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_un addr;
    std::memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    const std::string& name = (*launcher)->address();
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    socklen_t len = static_cast<socklen_t>(
        offsetof(struct sockaddr_un, sun_path) + 1 + name.size());
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
    if (i == 0) {
      std::string hello(40, 'x');
      ASSERT_EQ(::write(fd, hello.data(), hello.size()), 40);
    } else {
      ::shutdown(fd, SHUT_WR);
    }
    strangers.push_back(fd);
  }
  absl::StatusOr<pool_internal::LaunchedWorker> w = (*launcher)->Launch();
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_GT(w->pid, 0);
  // The stranger got nothing: no fd, just a closed connection.
  char byte;
  EXPECT_EQ(::read(strangers[0], &byte, 1), 0);
  for (int fd : strangers) ::close(fd);
  // Closing the worker's input ends it cleanly.
  ::shutdown(w->sock.get(), SHUT_WR);
  EXPECT_EQ(w->reap(), 0);
  ::munmap(w->slot, sizeof(*w->slot));
}

INSTANTIATE_TEST_SUITE_P(Methods, StartMethodTest,
                         ::testing::Values("spawn", "forkserver"),
                         [](const auto& info) {
                           return std::string(info.param);
                         });

TEST(StartMethodOptionsTest, UnknownStartMethod) {
  PoolOptions o;
  o.processes = 1;
  o.start_method = "vfork";
  Pool pool(o);
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(pool.status().message(), "vfork"));
}

}  // namespace
}  // namespace mp
