// -----------------------------------------------------------------------------
// File: tools/pmap/runner.h
// -----------------------------------------------------------------------------
//
// `mp::pmap::Runner` is pmap's scheduler: it starts jobs (each in its own
// process group, through `mp::Spawn()`), keeps at most -j running, collects
// their output (--group / -k / --line-buffer / -u, --tag), writes the
// --joblog, applies --timeout, --retries, --halt and --delay, draws the
// progress bar, and on SIGINT/SIGTERM terminates every job's process group
// with the --term-seq before returning.
//
//   absl::StatusOr<CommandTemplate> t = CommandTemplate::Parse(o.command, o.no_shell);
//   absl::StatusOr<std::unique_ptr<InputGenerator>> in = InputGenerator::Create(o);
//   Runner runner(o, *t, *std::move(in));
//   int exit_status = runner.Run();   // GNU parallel's exit status
//
// `Run()` blocks SIGCHLD, SIGINT, SIGTERM and SIGHUP and reads them from a
// signalfd; it makes this process a child subreaper so grandchildren that a
// job leaves behind come back to it and can be reaped. Call it once, from a
// single-threaded program.

#ifndef MP_TOOLS_PMAP_RUNNER_H_
#define MP_TOOLS_PMAP_RUNNER_H_

#include <memory>

#include "tools/pmap/command.h"
#include "tools/pmap/inputs.h"
#include "tools/pmap/options.h"

namespace mp {
namespace pmap {

class Runner {
 public:
  Runner(const Options& options, CommandTemplate command,
         std::unique_ptr<InputGenerator> inputs);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Runner::Run()
  //
  // Runs every job and returns the exit status (see `pmap --help`): 0, the
  // number of failed jobs (101 beyond 100), the failing job's status for
  // --halt ...,fail=1, 128+signal after SIGINT/SIGTERM/SIGHUP, 255 when
  // pmap itself failed (the reason is printed on stderr).
  int Run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pmap
}  // namespace mp

#endif  // MP_TOOLS_PMAP_RUNNER_H_
