// --mode=counter: the tutorials' shared-counter example. One mp::Process per
// number; each child squares its number, then adds 1 to a shared
// mp::Value<int64_t> kIncrements times, each time under the Value's lock.
// Without the lock the increments of different processes would be lost;
// with it the total is exactly n * kIncrements, which the mode checks.
// Children attach to the Value by name, so every start method works.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "process/process.h"
#include "process/status_macros.h"
#include "shm/value.h"
#include "sync/guard.h"
#include "tools/psquare/mode.h"

namespace mp {
namespace psquare {
namespace {

constexpr int64_t kIncrements = 10000;

// Runs in the child; registered for the forkserver and spawn start methods.
int CountInChild(std::string counter_name, int x, int64_t sleep_ns) {
  absl::StatusOr<Value<int64_t>> counter = Value<int64_t>::Attach(counter_name);
  if (!counter.ok()) return 1;
  SquareWork(x, absl::Nanoseconds(sleep_ns));
  for (int64_t i = 0; i < kIncrements; ++i) {
    Guard g(*counter->GetLock());  // Python: with counter.get_lock():
    counter->value() += 1;         //             counter.value += 1
  }
  return 0;
}
MP_REGISTER(CountInChild);

absl::Status RunCounter(const Config& config) {
  MP_ASSIGN_OR_RETURN(Value<int64_t> counter, Value<int64_t>::Create(0));
  ProcessOptions options;
  options.start_method = config.start_method;
  std::vector<Process> processes;
  processes.reserve(config.n);
  for (int x = 0; x < config.n; ++x) {
    processes.emplace_back(options, CountInChild, counter.name(), x,
                           absl::ToInt64Nanoseconds(config.sleep));
    MP_RETURN_IF_ERROR(processes.back().Start());
  }
  MP_RETURN_IF_ERROR(JoinAll(processes));
  const int64_t want = config.n * kIncrements;
  const int64_t got = counter.Get();
  std::printf("counter %lld (%d processes x %lld locked increments)\n",
              static_cast<long long>(got), config.n,
              static_cast<long long>(kIncrements));
  std::fflush(stdout);
  if (got != want) {
    return absl::InternalError(
        absl::StrCat("counter is ", got, ", want ", want, ": lost updates"));
  }
  return absl::OkStatus();
}

}  // namespace

PSQUARE_MODE(counter,
             "one mp::Process per number, each also adds 1 to a shared "
             "mp::Value 10000 times under its lock; checks the total "
             "(--start_method)",
             RunCounter);

}  // namespace psquare
}  // namespace mp
