// Process start+join per start method, against a bare fork()+_exit()+
// waitpid() of this same binary. Peers in bench/python/process_bench.py.
//
//   bazel run -c opt //bench:process_benchmark
//
// The binary is kept small (it is forked and exec'ed): mp's process layer
// and Google Benchmark only.

#include "bench/raw_peer.h"
#include "benchmark/benchmark.h"
#include "process/process.h"

namespace {

void Nothing() {}
MP_REGISTER(Nothing);

void BM_BareForkWaitpid(benchmark::State& state) {
  for (auto _ : state) {
    if (!mp::bench::ForkExitReap(1)) {
      state.SkipWithError("fork failed");
      break;
    }
  }
}
BENCHMARK(BM_BareForkWaitpid)->UseRealTime();

void BM_ProcessStartJoin(benchmark::State& state, mp::StartMethod method) {
  if (method == mp::StartMethod::kForkServer &&
      !mp::StartForkServer().ok()) {
    state.SkipWithError("cannot start the forkserver");
    return;
  }
  mp::ProcessOptions options;
  options.start_method = method;
  for (auto _ : state) {
    mp::Process p(options, Nothing);
    if (!p.Start().ok() || !p.Join().ok() || p.exitcode() != 0) {
      state.SkipWithError("start/join failed");
      break;
    }
  }
}
BENCHMARK_CAPTURE(BM_ProcessStartJoin, fork, mp::StartMethod::kFork)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_ProcessStartJoin, forkserver,
                  mp::StartMethod::kForkServer)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_ProcessStartJoin, spawn, mp::StartMethod::kSpawn)
    ->UseRealTime();

}  // namespace
