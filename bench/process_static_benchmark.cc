// Process start+join per start method in a fully static binary, with a
// minimal harness that speaks Google Benchmark's flags and JSON (the subset
// bench/compare.py and bench/smoke.sh use).
//
//   bazel run -c opt //bench:process_static_benchmark
//
// Why a second binary: the spawn start method re-executes the program
// itself, so its cost is mostly the program's own start-up. Google
// Benchmark is only available as a shared library here, and dynamic loading
// of libbenchmark.so, libstdc++.so and ~30 abseil .so files costs ~5 ms per
// exec on this machine, more than everything else together. A statically
// linked program (what a deployment of an mp program would be) starts in
// ~0.4 ms. `process_benchmark` measures the same cases in the dynamically
// linked Google Benchmark binary.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "process/process.h"

namespace {

void Nothing() {}
MP_REGISTER(Nothing);

bool BareForkWaitpid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  if (pid < 0) return false;
  int status;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return true;
}

bool StartJoin(mp::StartMethod method) {
  mp::ProcessOptions options;
  options.start_method = method;
  mp::Process p(options, Nothing);
  absl::Status s = p.Start();
  if (s.ok()) s = p.Join();
  if (!s.ok()) std::fprintf(stderr, "%s\n", s.ToString().c_str());
  return s.ok() && p.exitcode() == 0;
}

struct Case {
  std::string name;
  std::function<bool()> run;
};

}  // namespace

int main(int argc, char** argv) {
  std::string filter = ".";
  double min_time = 0.5;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strncmp(a, "--benchmark_filter=", 19) == 0) {
      filter = a + 19;
    } else if (std::strncmp(a, "--benchmark_min_time=", 21) == 0) {
      min_time = std::atof(a + 21);
    } else if (std::strcmp(a, "--benchmark_format=json") == 0) {
      json = true;
    } else if (std::strcmp(a, "--benchmark_format=console") == 0) {
      json = false;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", a);
      return 2;
    }
  }
  std::vector<Case> cases = {
      {"BM_BareForkWaitpid", BareForkWaitpid},
      {"BM_ProcessStartJoin/fork", [] { return StartJoin(mp::StartMethod::kFork); }},
      {"BM_ProcessStartJoin/forkserver",
       [] { return StartJoin(mp::StartMethod::kForkServer); }},
      {"BM_ProcessStartJoin/spawn",
       [] { return StartJoin(mp::StartMethod::kSpawn); }},
  };
  std::regex re(filter);
  std::string out = "{\n  \"benchmarks\": [";
  int status = 0;
  std::vector<const Case*> selected;
  for (const Case& c : cases) {
    if (!std::regex_search(c.name, re)) continue;
    if (!c.run()) {  // warm-up (starts the forkserver)
      std::fprintf(stderr, "%s failed\n", c.name.c_str());
      status = 1;
      continue;
    }
    selected.push_back(&c);
  }
  // The cases are measured in interleaved rounds and each reports its
  // median round, so that load changing during the run (the machine is
  // shared) does not favour whichever case ran at a quiet moment.
  const int rounds = min_time >= 0.1 ? 7 : 1;
  std::vector<std::vector<double>> per_round(selected.size());
  std::vector<long> iterations(selected.size(), 0);
  for (int round = 0; round < rounds; ++round) {
    for (size_t k = 0; k < selected.size(); ++k) {
      const Case& c = *selected[k];
      long n = 0;
      auto start = std::chrono::steady_clock::now();
      double elapsed = 0;
      do {
        if (!c.run()) {
          std::fprintf(stderr, "%s failed\n", c.name.c_str());
          return 1;
        }
        ++n;
        elapsed = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - start)
                      .count();
      } while (elapsed < min_time / rounds);
      per_round[k].push_back(elapsed * 1e9 / n);
      iterations[k] += n;
    }
  }
  bool first = true;
  for (size_t k = 0; k < selected.size(); ++k) {
    const Case& c = *selected[k];
    std::vector<double>& v = per_round[k];
    std::sort(v.begin(), v.end());
    double ns = v[v.size() / 2];
    if (json) {
      char buf[512];
      std::snprintf(buf, sizeof(buf),
                    "%s\n    {\"name\": \"%s\", \"run_name\": \"%s\", "
                    "\"run_type\": \"iteration\", \"iterations\": %ld, "
                    "\"real_time\": %.1f, \"cpu_time\": %.1f, "
                    "\"time_unit\": \"ns\"}",
                    first ? "" : ",", c.name.c_str(), c.name.c_str(),
                    iterations[k], ns, ns);
      out += buf;
      first = false;
    } else {
      std::printf("%-34s %12.0f ns %10ld\n", c.name.c_str(), ns,
                  iterations[k]);
    }
  }
  out += "\n  ]\n}\n";
  if (json) std::fputs(out.c_str(), stdout);
  (void)mp::StopForkServer();
  return status;
}
