// --mode=process: one mp::Process per number, all started, then all joined
// (the tutorials' `for i in range(n): Process(target=square, args=(i,))`).

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "process/process.h"
#include "process/status_macros.h"
#include "tools/psquare/mode.h"

namespace mp {
namespace psquare {
namespace {

// Runs in the child; registered for the forkserver and spawn start methods.
void SquareInChild(int x, int64_t sleep_ns) {
  SquareWork(x, absl::Nanoseconds(sleep_ns));
}
MP_REGISTER(SquareInChild);

absl::Status RunProcess(const Config& config) {
  ProcessOptions options;
  options.start_method = config.start_method;
  std::vector<Process> processes;
  processes.reserve(config.n);
  for (int x = 0; x < config.n; ++x) {
    processes.emplace_back(options, SquareInChild, x,
                           absl::ToInt64Nanoseconds(config.sleep));
    MP_RETURN_IF_ERROR(processes.back().Start());
  }
  MP_RETURN_IF_ERROR(JoinAll(processes));
  return absl::OkStatus();
}

}  // namespace

PSQUARE_MODE(process, "one mp::Process per number (--start_method)",
             RunProcess);

}  // namespace psquare
}  // namespace mp
