// --mode=queue: one mp::Process per number; each child sends its square back
// through an mp::Queue and the parent prints the results in order of the
// numbers (the tutorials' `Queue` example, without its exit deadlock: Put()
// returns once the value is in shared memory, so children may be joined
// before the queue is drained).

#include <cstdint>
#include <cstdio>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "ipc/queue.h"
#include "process/process.h"
#include "process/status_macros.h"
#include "tools/psquare/mode.h"

namespace mp {
namespace psquare {
namespace {

using Result = std::pair<int, int64_t>;  // (x, x*x)

// Runs in the child; registered for the forkserver and spawn start methods
// (the queue travels as its name and is attached in the child).
int QueueSquareInChild(Queue<Result> results, int x, int64_t sleep_ns) {
  const int64_t y = SquareWork(x, absl::Nanoseconds(sleep_ns));
  return results.Put(Result(x, y)).ok() ? 0 : 1;
}
MP_REGISTER(QueueSquareInChild);

absl::Status RunQueue(const Config& config) {
  MP_ASSIGN_OR_RETURN(Queue<Result> results, Queue<Result>::Create());
  ProcessOptions options;
  options.start_method = config.start_method;
  std::vector<Process> processes;
  processes.reserve(config.n);
  for (int x = 0; x < config.n; ++x) {
    processes.emplace_back(options, QueueSquareInChild, results, x,
                           absl::ToInt64Nanoseconds(config.sleep));
    MP_RETURN_IF_ERROR(processes.back().Start());
  }
  // Joining first is safe here (it would deadlock with Python's Queue).
  MP_RETURN_IF_ERROR(JoinAll(processes));
  std::vector<int64_t> squares(config.n, -1);
  for (int i = 0; i < config.n; ++i) {
    MP_ASSIGN_OR_RETURN(Result r, results.Get(absl::Seconds(10)));
    if (r.first < 0 || r.first >= config.n || squares[r.first] != -1) {
      return absl::InternalError(
          absl::StrCat("unexpected result for ", r.first));
    }
    squares[r.first] = r.second;
  }
  PrintResults(squares);
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace

PSQUARE_MODE(queue,
             "one mp::Process per number, squares sent back via mp::Queue "
             "(--start_method)",
             RunQueue);

}  // namespace psquare
}  // namespace mp
