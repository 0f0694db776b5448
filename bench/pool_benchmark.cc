// Pool benchmarks (area "pool"): mp::Pool and mp::ProcessPoolExecutor
// against raw pipes/socketpairs in the same binary; Python's peers are in
// bench/python/pool_bench.py. Pools are started once, outside the timing.
//
//   bazel run -c opt //bench:pool_benchmark
//   bench/compare.py --area pool

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "bench/raw_peer.h"
#include "benchmark/benchmark.h"
#include "pool/executor.h"
#include "pool/pool.h"

namespace {

bool Smoke() { return getenv("MP_BENCH_SMOKE") != nullptr; }

int Square(int x) { return x * x; }
std::string MiB(int) { return std::string(1 << 20, 'r'); }

mp::Pool& SharedPool() {
  static mp::Pool* pool = [] {
    mp::PoolOptions o;
    o.processes = mp::CpuCount();
    return new mp::Pool(o);
  }();
  return *pool;
}

mp::ProcessPoolExecutor& SharedExecutor() {
  static auto* ex = new mp::ProcessPoolExecutor(mp::CpuCount());
  return *ex;
}

std::vector<int> Range(int n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// Pool(2) start + Close + Join with a start method. For spawn and
// forkserver (informational, registered below; peer: Python's Pool with
// get_context("spawn") / ("forkserver")) workers connect back and are
// started one at a time, and the forkserver is started before timing
// (Python's is too, after the first pool).
void BM_PoolStartCloseJoinMethod(benchmark::State& state, const char* method) {
  if (std::string(method) == "forkserver" && !mp::StartForkServer().ok()) {
    state.SkipWithError("forkserver");
    return;
  }
  for (auto _ : state) {
    mp::PoolOptions o;
    o.processes = 2;
    o.start_method = method;
    mp::Pool pool(o);
    if (!pool.status().ok()) {
      state.SkipWithError("start");
      break;
    }
    pool.Close();
    if (!pool.Join().ok()) state.SkipWithError("join");
  }
  state.SetItemsProcessed(state.iterations());
}

// Pool start + Close + Join with 2 fork workers. Registered first, so it
// runs before the other cases grow this process (fork copies its page
// tables).
void BM_PoolStartCloseJoin(benchmark::State& state) {
  BM_PoolStartCloseJoinMethod(state, "fork");
}
BENCHMARK(BM_PoolStartCloseJoin)->UseRealTime();

// Informational floors for BM_PoolStartCloseJoin, in this same binary (same
// mappings to copy at fork): two children forked one after the other that
// `_exit(0)` at once, reaped with waitpid; the workers without the pool: two
// children that block reading a socketpair until EOF, the parent shuts both
// sockets, then reaps both; and (BM_BareTwoForksThreadReap) the same with a
// thread that reaps them, as the pool's handler thread does.
void BM_BareTwoForksExitWait(benchmark::State& state) {
  for (auto _ : state) {
    if (!mp::bench::ForkExitReap(2)) {
      state.SkipWithError("fork");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BareTwoForksExitWait)->UseRealTime();

// Forks a child that reads its end of a new socketpair until EOF and then
// exits; `*sock` gets the other end. -1 when socketpair or fork failed.
pid_t ForkEofChild(int* sock) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    char c;
    close(sv[0]);
    while (read(sv[1], &c, 1) > 0) {
    }
    _exit(0);
  }
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    return -1;
  }
  *sock = sv[0];
  return pid;
}

// Two ForkEofChild()s; on failure, the first is ended and reaped again.
bool ForkTwoEofChildren(pid_t pids[2], int socks[2]) {
  pids[0] = ForkEofChild(&socks[0]);
  if (pids[0] < 0) return false;
  pids[1] = ForkEofChild(&socks[1]);
  if (pids[1] >= 0) return true;
  close(socks[0]);
  int st;
  waitpid(pids[0], &st, 0);
  return false;
}

void BM_BareTwoForksEofWait(benchmark::State& state) {
  for (auto _ : state) {
    pid_t pids[2];
    int socks[2];
    if (!ForkTwoEofChildren(pids, socks)) {
      state.SkipWithError("socketpair or fork");
      break;
    }
    for (int i = 0; i < 2; ++i) shutdown(socks[i], SHUT_WR);
    for (int i = 0; i < 2; ++i) {
      int st;
      waitpid(pids[i], &st, 0);
      close(socks[i]);
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BareTwoForksEofWait)->UseRealTime();

// The pool's shape without the pool: BM_BareTwoForksEofWait plus a thread,
// created after the forks, that polls the two children's pidfds and reaps
// each as it ends; the caller joins it.
void BM_BareTwoForksThreadReap(benchmark::State& state) {
  for (auto _ : state) {
    pid_t pids[2];
    int socks[2];
    if (!ForkTwoEofChildren(pids, socks)) {
      state.SkipWithError("socketpair or fork");
      break;
    }
    int pidfds[2];
    for (int i = 0; i < 2; ++i) {
      pidfds[i] = static_cast<int>(syscall(SYS_pidfd_open, pids[i], 0));
    }
    std::thread reaper([&] {
      bool reaped[2] = {false, false};
      for (int left = 2; left > 0;) {
        struct pollfd fds[2];
        int slot[2];
        int n = 0;
        for (int i = 0; i < 2; ++i) {
          if (!reaped[i]) {
            fds[n] = {pidfds[i], POLLIN, 0};
            slot[n++] = i;
          }
        }
        if (poll(fds, n, -1) < 0) continue;
        for (int k = 0; k < n; ++k) {
          if (fds[k].revents == 0) continue;
          int st;
          waitpid(pids[slot[k]], &st, 0);
          reaped[slot[k]] = true;
          --left;
        }
      }
    });
    for (int i = 0; i < 2; ++i) shutdown(socks[i], SHUT_WR);
    reaper.join();
    for (int i = 0; i < 2; ++i) {
      close(socks[i]);
      close(pidfds[i]);
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BareTwoForksThreadReap)->UseRealTime();

// Map of N trivial tasks with Python's default chunksize.
void BM_PoolMap(benchmark::State& state) {
  const int n = Smoke() ? 2000 : static_cast<int>(state.range(0));
  std::vector<int> xs = Range(n);
  mp::Pool& pool = SharedPool();
  for (auto _ : state) {
    auto r = pool.Map(Square, xs);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_PoolMap)->Arg(200000)->UseRealTime();

// Map with chunksize = 1: one task per item.
void BM_PoolMapChunksize1(benchmark::State& state) {
  const int n = Smoke() ? 200 : static_cast<int>(state.range(0));
  std::vector<int> xs = Range(n);
  mp::Pool& pool = SharedPool();
  for (auto _ : state) {
    auto r = pool.Map(Square, xs, 1);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_PoolMapChunksize1)->Arg(20000)->UseRealTime();

// ApplyAsync(...).Get(), one task in flight.
void BM_PoolApplyAsyncRoundTrip(benchmark::State& state) {
  mp::Pool& pool = SharedPool();
  int i = 0;
  for (auto _ : state) {
    int v = pool.ApplyAsync(Square, ++i & 1023).Get();
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolApplyAsyncRoundTrip)->UseRealTime();

// The C floor for a round trip: 4 bytes there and back over two pipes to a
// forked echo process.
void BM_RawPipePingPong(benchmark::State& state) {
  int to[2], from[2];
  if (pipe2(to, O_CLOEXEC) != 0 || pipe2(from, O_CLOEXEC) != 0) {
    state.SkipWithError("pipe");
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(to[1]);
    close(from[0]);
    int v;
    while (read(to[0], &v, sizeof v) == sizeof v) {
      v = v * v;
      if (write(from[1], &v, sizeof v) != sizeof v) break;
    }
    _exit(0);
  }
  close(to[0]);
  close(from[1]);
  int i = 0;
  for (auto _ : state) {
    int v = ++i & 1023;
    if (write(to[1], &v, sizeof v) != sizeof v ||
        read(from[0], &v, sizeof v) != sizeof v) {
      state.SkipWithError("io");
      break;
    }
    benchmark::DoNotOptimize(v);
  }
  close(to[1]);
  close(from[0]);
  int st;
  waitpid(pid, &st, 0);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawPipePingPong)->UseRealTime();

// Executor: Submit N tasks, one future (one result) per task, wait for all.
void BM_ExecutorSubmit(benchmark::State& state) {
  const int n = Smoke() ? 100 : static_cast<int>(state.range(0));
  mp::ProcessPoolExecutor& ex = SharedExecutor();
  std::vector<mp::Future<int>> fs;
  fs.reserve(n);
  for (auto _ : state) {
    fs.clear();
    for (int i = 0; i < n; ++i) fs.push_back(ex.Submit(Square, i));
    for (auto& f : fs) {
      auto r = f.Result();
      if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_ExecutorSubmit)->Arg(10000)->UseRealTime();

// Results of 1 MiB each (item = one 1 MiB result), from a pool with
// `state.range(0)` workers; with 1 worker it is one writer and one reader,
// like the raw peer below.
void BM_PoolResult1MiB(benchmark::State& state) {
  const int n = Smoke() ? 4 : 64;
  std::vector<int> xs = Range(n);
  static mp::Pool* one = [] {
    mp::PoolOptions o;
    o.processes = 1;
    return new mp::Pool(o);
  }();
  mp::Pool& pool = state.range(0) == 1 ? *one : SharedPool();
  for (auto _ : state) {
    auto r = pool.Map(MiB, xs, 1);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * n * (int64_t{1} << 20));
}
BENCHMARK(BM_PoolResult1MiB)->Arg(1)->Arg(2)->UseRealTime();

// A forked process writes 1 MiB blocks into a socketpair, the parent reads
// them (item = 1 MiB received): into one reused buffer, or, with
// `keep_results`, each into a new std::string kept until the iteration ends.
void RawSocketpair1MiB(benchmark::State& state, bool keep_results) {
  const int n = Smoke() ? 4 : 64;
  const size_t kSize = 1 << 20;
  auto [fd, pid] = mp::bench::ForkPeer([n, kSize](mp::UniqueFd c) {
    std::string block(kSize, 'r');
    char go;
    while (mp::bench::RawReadExact(c.get(), &go, 1)) {
      for (int i = 0; i < n; ++i) {
        if (!mp::bench::RawWriteAll(c.get(), block.data(), kSize)) _exit(1);
      }
    }
  });
  std::string buf(keep_results ? 0 : kSize, '\0');
  for (auto _ : state) {
    char go = 'g';
    bool ok = mp::bench::RawWriteAll(fd.get(), &go, 1);
    std::vector<std::string> results;
    for (int i = 0; ok && i < n; ++i) {
      char* into = &buf[0];
      if (keep_results) {
        results.emplace_back(kSize, '\0');
        into = &results.back()[0];
      }
      ok = mp::bench::RawReadExact(fd.get(), into, kSize);
    }
    if (!ok) {
      state.SkipWithError("io");
      break;
    }
    benchmark::DoNotOptimize(buf);
    benchmark::DoNotOptimize(results);
  }
  fd.reset();
  mp::bench::Reap(pid);
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * n * static_cast<int64_t>(kSize));
}

// The floor for the pool's 1 MiB results: one cache-resident buffer.
void BM_RawSocketpair1MiB(benchmark::State& state) {
  RawSocketpair1MiB(state, /*keep_results=*/false);
}
BENCHMARK(BM_RawSocketpair1MiB)->UseRealTime();

// Informational, not a peer: each 1 MiB lands in a new std::string kept
// until the iteration ends, as Map's results are (64 MiB of distinct result
// memory per iteration). Shows what keeping the results costs by itself.
void BM_RawSocketpair1MiBKeepResults(benchmark::State& state) {
  RawSocketpair1MiB(state, /*keep_results=*/true);
}
BENCHMARK(BM_RawSocketpair1MiBKeepResults)->UseRealTime();

BENCHMARK_CAPTURE(BM_PoolStartCloseJoinMethod, spawn, "spawn")->UseRealTime();
BENCHMARK_CAPTURE(BM_PoolStartCloseJoinMethod, forkserver, "forkserver")
    ->UseRealTime();

}  // namespace
