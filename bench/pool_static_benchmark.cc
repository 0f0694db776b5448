// Pool(2) start + Close + Join in a fully static binary, with the minimal
// harness of bench/static_harness.h.
//
//   bazel run -c opt //bench:pool_static_benchmark
//
// Why a second binary: a fork copies the parent's memory mappings, so
// start-up depends on how the program is linked. The Google Benchmark
// binary links libbenchmark, libstdc++ and glibc as shared libraries (abseil
// is linked statically, third_party/gen_absl_build.py); this one links
// everything statically, as //bench:process_static_benchmark measures
// Process start. docs/PERFORMANCE.md quotes both.

#include <cstdio>
#include <string>

#include "bench/raw_peer.h"
#include "bench/static_harness.h"
#include "pool/pool.h"
#include "process/process.h"

namespace {

bool PoolStartCloseJoin(const std::string& method) {
  mp::PoolOptions o;
  o.processes = 2;
  o.start_method = method;
  mp::Pool pool(o);
  pool.Close();
  absl::Status s = pool.Join();
  if (!s.ok()) std::fprintf(stderr, "%s\n", s.ToString().c_str());
  return s.ok();
}

}  // namespace

int main(int argc, char** argv) {
  int status = mp_bench::RunStaticBenchmarks(
      argc, argv,
      {
          // The floor in this binary.
          {"BM_BareTwoForksExitWait", [] { return mp::bench::ForkExitReap(2); }},
          {"BM_PoolStartCloseJoin/fork",
           [] { return PoolStartCloseJoin("fork"); }},
          {"BM_PoolStartCloseJoin/forkserver",
           [] { return PoolStartCloseJoin("forkserver"); }},
          {"BM_PoolStartCloseJoin/spawn",
           [] { return PoolStartCloseJoin("spawn"); }},
      });
  (void)mp::StopForkServer();
  return status;
}
