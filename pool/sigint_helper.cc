// Test helper for sigint_test: starts a pool (start method argv[1], default
// fork), prints its worker pids, then blocks in Map() over long tasks until
// it is interrupted.

#include <stdio.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "pool/pool.h"
#include "process/register.h"

int SleepMs(int ms) {
  absl::SleepFor(absl::Milliseconds(ms));
  return ms;
}
MP_REGISTER(SleepMs);

int main(int argc, char** argv) {
  mp::PoolOptions options;
  options.processes = 2;
  if (argc > 1) options.start_method = argv[1];
  mp::Pool pool(options);
  if (!pool.status().ok()) {
    fprintf(stderr, "pool: %s\n", pool.status().ToString().c_str());
    return 2;
  }
  std::string line = "pids";
  for (int64_t pid : pool.WorkerPids()) line += " " + std::to_string(pid);
  printf("%s\n", line.c_str());
  fflush(stdout);
  auto r = pool.Map(SleepMs, std::vector<int>(20, 20000), 1);
  printf("map returned: %s\n", r.status().ToString().c_str());
  return 0;
}
