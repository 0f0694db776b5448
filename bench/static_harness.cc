#include "bench/static_harness.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>

namespace mp_bench {

int RunStaticBenchmarks(int argc, char** argv,
                        const std::vector<StaticCase>& cases) {
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
  std::regex re(filter);
  int status = 0;
  std::vector<const StaticCase*> selected;
  for (const StaticCase& c : cases) {
    if (!std::regex_search(c.name, re)) continue;
    if (!c.run()) {  // warm-up (e.g. starts the forkserver)
      std::fprintf(stderr, "%s failed\n", c.name.c_str());
      status = 1;
      continue;
    }
    selected.push_back(&c);
  }
  const int rounds = min_time >= 0.1 ? 7 : 1;
  std::vector<std::vector<double>> per_round(selected.size());
  std::vector<long> iterations(selected.size(), 0);
  for (int round = 0; round < rounds; ++round) {
    for (size_t k = 0; k < selected.size(); ++k) {
      const StaticCase& c = *selected[k];
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
  std::string out = "{\n  \"benchmarks\": [";
  bool first = true;
  for (size_t k = 0; k < selected.size(); ++k) {
    const StaticCase& c = *selected[k];
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
  return status;
}

}  // namespace mp_bench
