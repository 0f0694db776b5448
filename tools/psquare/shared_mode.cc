// --mode=shared: one mp::Process per number; each child writes its square
// into a shared mp::Array (slot x) and adds it to a shared mp::Value under
// the Value's lock (the tutorials' `Value`/`Array` example). Children attach
// to both by name, so every start method works. The parent prints the
// results in order of the numbers and the total.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "process/process.h"
#include "process/status_macros.h"
#include "shm/array.h"
#include "shm/value.h"
#include "sync/guard.h"
#include "tools/psquare/mode.h"

namespace mp {
namespace psquare {
namespace {

// Runs in the child; registered for the forkserver and spawn start methods.
int SharedSquareInChild(std::string squares_name, std::string total_name,
                        int x, int64_t sleep_ns) {
  absl::StatusOr<Array<int64_t>> squares = Array<int64_t>::Attach(squares_name);
  absl::StatusOr<Value<int64_t>> total = Value<int64_t>::Attach(total_name);
  if (!squares.ok() || !total.ok()) return 1;
  const int64_t y = SquareWork(x, absl::Nanoseconds(sleep_ns));
  if (!squares->Set(static_cast<size_t>(x), y).ok()) return 2;
  Guard g(*total->GetLock());  // Python: with total.get_lock():
  total->value() += y;         //             total.value += y
  return 0;
}
MP_REGISTER(SharedSquareInChild);

absl::Status RunShared(const Config& config) {
  std::vector<int64_t> init(config.n, -1);
  MP_ASSIGN_OR_RETURN(Array<int64_t> squares,
                      Array<int64_t>::Create(absl::MakeConstSpan(init)));
  MP_ASSIGN_OR_RETURN(Value<int64_t> total, Value<int64_t>::Create(0));
  ProcessOptions options;
  options.start_method = config.start_method;
  std::vector<Process> processes;
  processes.reserve(config.n);
  for (int x = 0; x < config.n; ++x) {
    processes.emplace_back(options, SharedSquareInChild, squares.name(),
                           total.name(), x,
                           absl::ToInt64Nanoseconds(config.sleep));
    MP_RETURN_IF_ERROR(processes.back().Start());
  }
  MP_RETURN_IF_ERROR(JoinAll(processes));
  PrintResults(squares.span());
  std::printf("total %lld\n", static_cast<long long>(total.Get()));
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace

PSQUARE_MODE(shared,
             "one mp::Process per number, squares written to a shared "
             "mp::Array and summed in an mp::Value (--start_method)",
             RunShared);

}  // namespace psquare
}  // namespace mp
