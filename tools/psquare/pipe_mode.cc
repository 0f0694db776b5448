// --mode=pipe: one mp::Process per number, each with its own mp::Pipe; the
// child sends (x, x*x) through its end, and the parent collects results with
// mp::Wait() as they arrive (Python's `Pipe` + `connection.wait` example).
// Pipes are fds, inherited only by fork: other start methods are refused.

#include <cstdint>
#include <cstdio>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "ipc/connection.h"
#include "ipc/wait.h"
#include "process/process.h"
#include "process/status_macros.h"
#include "tools/psquare/mode.h"

namespace mp {
namespace psquare {
namespace {

using Result = std::pair<int32_t, int64_t>;  // (x, x*x)

absl::Status RunPipe(const Config& config) {
  if (config.start_method != StartMethod::kFork) {
    return absl::InvalidArgumentError(
        "--mode=pipe needs --start_method=fork (pipes are inherited fds)");
  }
  std::vector<Connection> readers;
  std::vector<Process> processes;
  readers.reserve(config.n);
  processes.reserve(config.n);
  ProcessOptions options;
  options.start_method = StartMethod::kFork;
  for (int x = 0; x < config.n; ++x) {
    MP_ASSIGN_OR_RETURN(auto pipe, Pipe(/*duplex=*/false));
    Connection writer = std::move(pipe.second);
    readers.push_back(std::move(pipe.first));
    const absl::Duration sleep = config.sleep;
    processes.emplace_back(options, [&writer, x, sleep] {
      const int64_t y = SquareWork(x, sleep);
      return writer.Send(Result(x, y)).ok() ? 0 : 1;
    });
    MP_RETURN_IF_ERROR(processes.back().Start());
    MP_RETURN_IF_ERROR(writer.Close());  // the child has its own copy
  }
  std::vector<int64_t> squares(config.n, -1);
  int pending = config.n;
  while (pending > 0) {
    std::vector<WaitObject> objects;
    std::vector<int> which;
    for (int x = 0; x < config.n; ++x) {
      if (!readers[x].closed()) {
        objects.emplace_back(readers[x]);
        which.push_back(x);
      }
    }
    MP_ASSIGN_OR_RETURN(std::vector<size_t> ready,
                        Wait(objects, absl::Seconds(60)));
    if (ready.empty()) return absl::DeadlineExceededError("no result in 60 s");
    for (size_t i : ready) {
      Connection& c = readers[which[i]];
      MP_ASSIGN_OR_RETURN(Result r, c.Recv<Result>());
      if (r.first != which[i] || squares[r.first] != -1) {
        return absl::InternalError(
            absl::StrCat("unexpected result for ", r.first));
      }
      squares[r.first] = r.second;
      MP_RETURN_IF_ERROR(c.Close());
      --pending;
    }
  }
  MP_RETURN_IF_ERROR(JoinAll(processes));
  PrintResults(squares);
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace

PSQUARE_MODE(pipe,
             "one mp::Process (fork) per number, squares sent back through "
             "an mp::Pipe each, collected with mp::Wait",
             RunPipe);

}  // namespace psquare
}  // namespace mp
