// psquare: squares the numbers 0..n-1, each with simulated work, in the ways
// the classic multiprocessing tutorials show, and times it.
//
//   psquare --n=5 --sleep=1 --mode=serial     # about 5 s
//   psquare --n=5 --sleep=1 --mode=process    # about 1 s
//   psquare --n=5 --sleep=1 --mode=compare    # serial, then every other mode
//
// Exit status: 0 on success, 1 when a mode fails, 2 for a bad command line.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "process/process.h"
#include "tools/psquare/mode.h"

ABSL_FLAG(int, n, 5, "square the numbers 0..n-1 (0 <= n <= 10000)");
ABSL_FLAG(double, sleep, 1.0,
          "seconds of simulated work per number (0 <= sleep <= 3600)");
ABSL_FLAG(std::string, mode, "compare",
          "how to run: compare, or one of --list_modes");
ABSL_FLAG(std::string, start_method, "fork",
          "start method for modes that start processes: fork, forkserver, "
          "spawn");
ABSL_FLAG(bool, list_modes, false, "print the modes and exit");

namespace {

constexpr int kBadUsage = 2;

[[noreturn]] void UsageError(const std::string& message) {
  std::fprintf(stderr, "psquare: %s\nTry 'psquare --help'.\n",
               message.c_str());
  std::exit(kBadUsage);
}

std::string ModeList() {
  std::vector<std::string> lines;
  for (const mp::psquare::Mode& m : mp::psquare::Modes()) {
    lines.push_back(absl::StrFormat("  %-10s %s", m.name, m.help));
  }
  lines.push_back(absl::StrFormat("  %-10s %s", "compare",
                                  "serial, then every other mode; summary"));
  return absl::StrJoin(lines, "\n");
}

void PrintHelp() {
  std::printf(
      "Usage: psquare [--n=N] [--sleep=SECONDS] [--mode=MODE] "
      "[--start_method=METHOD]\n\n"
      "Squares 0..N-1, each with SECONDS of simulated work, and times it.\n\n"
      "Flags:\n"
      "  --n=N                  numbers to square (default 5; 0..10000)\n"
      "  --sleep=SECONDS        simulated work per number (default 1)\n"
      "  --mode=MODE            how to run (default compare)\n"
      "  --start_method=METHOD  fork (default), forkserver or spawn\n"
      "  --list_modes           print the modes and exit\n"
      "  --help                 this text\n\n"
      "Modes:\n%s\n\n"
      "Exit status: 0 ok, 1 a mode failed, 2 bad command line.\n",
      ModeList().c_str());
}

// Checks every flag before absl parses them, so that unknown flags and bad
// values exit with status 2 (absl's own parser exits 1) and `--help` is ours.
void PreCheckFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') {
      UsageError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    size_t eq = body.find('=');
    absl::string_view name = body.substr(0, eq);
    if (name == "help" || name == "h" || name == "helpfull" ||
        name == "helpshort") {
      PrintHelp();
      std::exit(0);
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;
    if (flag == nullptr && absl::ConsumePrefix(&name, "no")) {
      flag = absl::FindCommandLineFlag(name);
      negated = flag != nullptr;
      if (negated && (!flag->IsOfType<bool>() || eq != absl::string_view::npos)) {
        UsageError(absl::StrCat("bad flag '", arg, "'"));
      }
    }
    if (flag == nullptr || flag->IsRetired() ||
        flag->Filename().find("psquare") == std::string::npos) {
      UsageError(absl::StrCat("unknown flag '", arg, "'"));
    }
    if (negated) continue;
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(body.substr(eq + 1));
    } else if (flag->IsOfType<bool>()) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      UsageError(absl::StrCat("flag '", arg, "' needs a value"));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      UsageError(absl::StrCat("bad value for --", flag->Name(), ": ", error));
    }
  }
}

mp::psquare::Config ValidatedConfig() {
  mp::psquare::Config config;
  config.n = absl::GetFlag(FLAGS_n);
  if (config.n < 0 || config.n > 10000) {
    UsageError(absl::StrCat("--n must be in 0..10000, got ", config.n));
  }
  double sleep = absl::GetFlag(FLAGS_sleep);
  if (!(sleep >= 0 && sleep <= 3600)) {
    UsageError(absl::StrCat("--sleep must be in 0..3600 seconds, got ",
                            sleep));
  }
  config.sleep = absl::Seconds(sleep);
  absl::StatusOr<mp::StartMethod> method =
      mp::ParseStartMethod(absl::GetFlag(FLAGS_start_method));
  if (!method.ok()) {
    UsageError(absl::StrCat("--start_method: ", method.status().message()));
  }
  config.start_method = *method;
  return config;
}

// Runs one mode; returns its time in seconds or -1 on failure.
double RunMode(const mp::psquare::Mode& mode,
               const mp::psquare::Config& config) {
  std::fflush(stdout);
  absl::Time start = absl::Now();
  absl::Status s = mode.run(config);
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!s.ok()) {
    std::fprintf(stderr, "psquare: mode %s failed: %s\n", mode.name.c_str(),
                 s.ToString().c_str());
    return -1;
  }
  std::printf("Time taken %.2f seconds\n", seconds);
  std::fflush(stdout);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "squares 0..n-1 with simulated work, serially and in parallel");
  PreCheckFlags(argc, argv);
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    UsageError(absl::StrCat("unexpected argument '", rest[1], "'"));
  }
  if (absl::GetFlag(FLAGS_list_modes)) {
    std::printf("%s\n", ModeList().c_str());
    return 0;
  }
  const mp::psquare::Config config = ValidatedConfig();
  const std::string mode_name = absl::GetFlag(FLAGS_mode);

  if (mode_name != "compare") {
    const mp::psquare::Mode* mode = mp::psquare::FindMode(mode_name);
    if (mode == nullptr) {
      UsageError(absl::StrCat("unknown mode '", mode_name,
                              "'; modes:\n", ModeList()));
    }
    return RunMode(*mode, config) < 0 ? 1 : 0;
  }

  // compare: serial first, then every other mode.
  std::vector<std::string> summary;
  double serial = -1;
  bool failed = false;
  for (const mp::psquare::Mode& mode : mp::psquare::Modes()) {
    std::printf("== %s ==\n", mode.name.c_str());
    double t = RunMode(mode, config);
    if (t < 0) {
      failed = true;
      summary.push_back(absl::StrCat(mode.name, " failed"));
      continue;
    }
    if (mode.name == "serial") serial = t;
    std::string entry = absl::StrFormat("%s %.2fs", mode.name, t);
    if (mode.name != "serial" && serial > 0 && t > 0) {
      absl::StrAppendFormat(&entry, " (%.1fx)", serial / t);
    }
    summary.push_back(entry);
  }
  std::printf("Summary (n=%d, sleep=%gs, start method %s): %s\n", config.n,
              absl::ToDoubleSeconds(config.sleep),
              std::string(mp::StartMethodName(config.start_method)).c_str(),
              absl::StrJoin(summary, " | ").c_str());
  return failed ? 1 : 0;
}
