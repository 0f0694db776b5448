// Test helper for process_test: starts one child that sleeps, prints its
// pid, then waits to be killed.
//
//   daemon_parent_helper <fork|forkserver|spawn> <daemon: 0|1>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "process/process.h"

namespace {

void SleepLong() { absl::SleepFor(absl::Seconds(60)); }
MP_REGISTER(SleepLong);

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <fork|forkserver|spawn> <0|1>\n", argv[0]);
    return 2;
  }
  absl::StatusOr<mp::StartMethod> method = mp::ParseStartMethod(argv[1]);
  if (!method.ok()) {
    std::fprintf(stderr, "%s\n", method.status().ToString().c_str());
    return 2;
  }
  mp::ProcessOptions opts;
  opts.start_method = *method;
  opts.daemon = std::strcmp(argv[2], "1") == 0;
  mp::Process p(opts, SleepLong);
  absl::Status s = p.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("%d\n", static_cast<int>(p.pid()));
  std::fflush(stdout);
  for (;;) ::pause();
}
