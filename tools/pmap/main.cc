// pmap: run a command for each input, in parallel. See `pmap --help` and
// docs/pmap.md.

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/pmap/command.h"
#include "tools/pmap/inputs.h"
#include "tools/pmap/options.h"
#include "tools/pmap/runner.h"

namespace {

int Cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int Fail(absl::string_view msg) {
  std::string line = absl::StrCat("pmap: ", msg, "\n");
  (void)!write(2, line.data(), line.size());
  return 255;
}

}  // namespace

int main(int argc, char** argv) {
  // Many jobs hold many fds: use the hard limit (like ulimit -n $(ulimit -Hn)).
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<mp::pmap::Options> o = mp::pmap::ParseArgs(args, Cpus());
  if (!o.ok()) return Fail(o.status().message());
  if (o->help) {
    std::string h = mp::pmap::HelpText();
    (void)!write(1, h.data(), h.size());
    return 0;
  }
  if (o->version) {
    static const char kVersion[] = "pmap (mp) 1.0\n";
    (void)!write(1, kVersion, sizeof(kVersion) - 1);
    return 0;
  }
  absl::StatusOr<mp::pmap::CommandTemplate> t =
      mp::pmap::CommandTemplate::Parse(o->command, o->no_shell);
  if (!t.ok()) return Fail(t.status().message());
  absl::StatusOr<std::unique_ptr<mp::pmap::InputGenerator>> in =
      mp::pmap::InputGenerator::Create(*o);
  if (!in.ok()) return Fail(in.status().message());
  mp::pmap::Runner runner(*o, *std::move(t), *std::move(in));
  return runner.Run();
}
