// Process start+join per start method in a fully static binary, with a
// minimal harness that speaks Google Benchmark's flags and JSON (the subset
// bench/compare.py and bench/smoke.sh use).
//
//   bazel run -c opt //bench:process_static_benchmark
//
// Why a second binary: the spawn start method re-executes the program
// itself, so its cost is mostly the program's own start-up. Google
// Benchmark is only available as a shared library here, and the dynamic
// loading of libbenchmark.so, libstdc++.so and glibc is a large part of an
// exec on this machine. A statically linked program starts in ~0.4 ms.
// `process_benchmark` measures the same cases in the dynamically linked
// Google Benchmark binary.

#include <cstdio>

#include "bench/raw_peer.h"
#include "bench/static_harness.h"
#include "process/process.h"

namespace {

void Nothing() {}
MP_REGISTER(Nothing);

bool StartJoin(mp::StartMethod method) {
  mp::ProcessOptions options;
  options.start_method = method;
  mp::Process p(options, Nothing);
  absl::Status s = p.Start();
  if (s.ok()) s = p.Join();
  if (!s.ok()) std::fprintf(stderr, "%s\n", s.ToString().c_str());
  return s.ok() && p.exitcode() == 0;
}

}  // namespace

int main(int argc, char** argv) {
  int status = mp_bench::RunStaticBenchmarks(
      argc, argv,
      {
          {"BM_BareForkWaitpid", [] { return mp::bench::ForkExitReap(1); }},
          {"BM_ProcessStartJoin/fork",
           [] { return StartJoin(mp::StartMethod::kFork); }},
          {"BM_ProcessStartJoin/forkserver",
           [] { return StartJoin(mp::StartMethod::kForkServer); }},
          {"BM_ProcessStartJoin/spawn",
           [] { return StartJoin(mp::StartMethod::kSpawn); }},
      });
  (void)mp::StopForkServer();
  return status;
}
