// -----------------------------------------------------------------------------
// File: tools/psquare/mode.h
// -----------------------------------------------------------------------------
//
// psquare's modes: each mode squares the numbers 0..n-1 in its own way
// (serially, one `mp::Process` per number, through a queue, a pool, ...)
// and prints, per number, in the tutorials' words:
//
//   start process:X
//   square X:Y
//   end process:X
//
// (use `SquareWork()`, which prints exactly that and sleeps `config.sleep`
// to simulate work). `psquare --mode=<name>` runs one mode and prints
// `Time taken S seconds`; `--mode=compare` runs serial, then every other
// mode, and prints a summary.
//
// Adding a mode (e.g. `queue`):
//   1. Write `tools/psquare/queue_mode.cc`:
//
//        namespace mp::psquare {
//        namespace {
//        absl::Status RunQueue(const Config& config) { ... }
//        }  // namespace
//        PSQUARE_MODE(queue, "one Process per number, results via mp::Queue",
//                     RunQueue);
//        }  // namespace mp::psquare
//
//      A function run in a child with the forkserver or spawn start method
//      (`config.start_method`) must be registered with `MP_REGISTER`.
//   2. Add the file to `srcs` of the `modes` library in
//      `tools/psquare/BUILD` (and its deps, e.g. "//ipc:queue"). The
//      library is `alwayslink`, so the mode registers itself.
//   3. Add a line for it to `psquare_test.sh` (it runs every mode listed by
//      `psquare --list_modes` anyway).
// The mode returns an error status when something fails; psquare prints it
// and exits 1.

#ifndef MP_TOOLS_PSQUARE_MODE_H_
#define MP_TOOLS_PSQUARE_MODE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "process/process.h"

namespace mp {
namespace psquare {

struct Config {
  int n = 5;                                    // square 0..n-1
  absl::Duration sleep = absl::Seconds(1);      // simulated work per number
  StartMethod start_method = StartMethod::kFork;  // for modes that start processes
};

using ModeFn = absl::Status (*)(const Config& config);

struct Mode {
  std::string name;
  std::string help;
  ModeFn run;
};

// Modes(): every registered mode, "serial" first, the rest by name.
std::vector<Mode> Modes();

// FindMode(): the mode called `name`, or nullptr.
const Mode* FindMode(const std::string& name);

// SquareWork(): the unit of work: prints "start process:X", sleeps `sleep`,
// prints "square X:Y", "end process:X" (each line written and flushed as
// one write, so lines of concurrent processes do not mix), returns x*x.
int64_t SquareWork(int x, absl::Duration sleep);

// JoinAll(): joins every process in order. Errors: Join()'s, or kInternal
// naming the first process that exited with a code other than 0.
absl::Status JoinAll(std::vector<Process>& processes);

// PrintResults(): prints "result X:Y" for each X (buffered: the caller
// flushes stdout).
void PrintResults(absl::Span<const int64_t> squares);

// Registers a mode at static initialisation (see PSQUARE_MODE).
struct ModeRegistrar {
  ModeRegistrar(const char* name, const char* help, ModeFn run);
};

}  // namespace psquare
}  // namespace mp

// PSQUARE_MODE(name, help, function): registers mode `name` (an identifier,
// used as the --mode value).
#define PSQUARE_MODE(name, help, fn) \
  static ::mp::psquare::ModeRegistrar psquare_mode_##name(#name, help, fn)

#endif  // MP_TOOLS_PSQUARE_MODE_H_
