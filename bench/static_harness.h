// -----------------------------------------------------------------------------
// File: bench/static_harness.h
// -----------------------------------------------------------------------------
//
// A minimal benchmark harness for fully static benchmark binaries (Google
// Benchmark exists here only as a shared library). It speaks the subset of
// Google Benchmark's flags and JSON that bench/compare.py and bench/smoke.sh
// use: `--benchmark_filter=REGEX`, `--benchmark_min_time=SECONDS`,
// `--benchmark_format=json|console`.
//
//   bool Work() { ...; return ok; }
//   int main(int argc, char** argv) {
//     return mp_bench::RunStaticBenchmarks(argc, argv, {{"BM_Work", Work}});
//   }
//
// Each case runs once as a warm-up, then the selected cases are measured in
// seven interleaved rounds and each reports its median round, so load that
// changes during the run (the machine is shared) does not favour whichever
// case ran at a quiet moment. A case returning false fails the run (exit 1).
// A bad flag exits 2.

#ifndef MP_BENCH_STATIC_HARNESS_H_
#define MP_BENCH_STATIC_HARNESS_H_

#include <functional>
#include <string>
#include <vector>

namespace mp_bench {

struct StaticCase {
  std::string name;
  std::function<bool()> run;  // one iteration; false: it failed
};

// Returns the process exit status: 0, 1 (a case failed) or 2 (bad flag).
int RunStaticBenchmarks(int argc, char** argv,
                        const std::vector<StaticCase>& cases);

}  // namespace mp_bench

#endif  // MP_BENCH_STATIC_HARNESS_H_
