// -----------------------------------------------------------------------------
// File: tools/pmap/options.h
// -----------------------------------------------------------------------------
//
// `mp::pmap::ParseArgs()` turns pmap's command line into `Options`.
//
//   absl::StatusOr<Options> o = ParseArgs({"-j4", "-k", "gzip", ":::", "a"});
//   // o->jobs == 4, o->keep_order, o->command == {"gzip"},
//   // o->sources == {{kArgs, {"a"}}}
//
// Options come first (GNU parallel's syntax: `-j4`, `-j 4`, `--jobs=4`,
// `--jobs 4`); the first other word starts the command, which runs up to
// the first `:::`, `:::+`, `::::` or `::::+`. `--` ends the options.

#ifndef MP_TOOLS_PMAP_OPTIONS_H_
#define MP_TOOLS_PMAP_OPTIONS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mp {
namespace pmap {

struct InputSource {
  enum Kind { kArgs, kFile };  // ::: values, or :::: / -a file ("-" = stdin)
  Kind kind = kArgs;
  std::vector<std::string> values;  // kArgs
  std::string path;                 // kFile
  bool linked = false;  // :::+ / ::::+ : lockstep with the previous source
};

struct HaltSpec {
  enum When { kNever, kNow, kSoon };
  enum What { kFail, kSuccess, kDone };
  When when = kNever;
  What what = kFail;
  double count = 1;      // jobs, or percent when `percent`
  bool percent = false;
};

struct TermStep {
  int signal;
  int wait_ms;
};

enum class OutputMode { kGroup, kLineBuffer, kUngroup };

struct Options {
  std::vector<std::string> command;
  std::vector<InputSource> sources;  // empty: standard input
  std::string delimiter = "\n";      // -d / -0
  int jobs = 1;                      // resolved -j
  int max_args = 1;                  // -n
  bool no_shell = false;             // -q
  OutputMode output = OutputMode::kGroup;
  bool keep_order = false;           // -k
  bool tag = false;
  std::string colsep;                // re2, empty = none
  std::string match;                 // re2
  std::string filter;                // re2
  std::string joblog;
  bool resume = false;
  bool resume_failed = false;
  bool bar = false;
  bool progress = false;
  bool eta = false;
  double timeout = 0;                // seconds, 0 = none
  int retries = 1;                   // attempts in total, like parallel
  HaltSpec halt;
  std::vector<TermStep> term_seq;
  double delay = 0;                  // seconds between starts
  bool dry_run = false;
  bool verbose = false;              // -v: print each command on stderr
  bool skip_empty = false;           // -r
  bool help = false;
  bool version = false;
};

// ParseArgs()
//
// `args` excludes argv[0]. `cpus` resolves -j (default: all cores; 0 means
// as many as possible; N% of cores; +N / -N relative to cores).
//
// Errors: `kInvalidArgument` naming the bad option or value, or "no command"
// when no command is given (unless --help/--version).
absl::StatusOr<Options> ParseArgs(const std::vector<std::string>& args,
                                  int cpus);

// ParseJobs()
//
// One -j value against `cpus`; "0" gives `unlimited`.
absl::StatusOr<int> ParseJobs(absl::string_view spec, int cpus, int unlimited);

// ParseHalt() / ParseTermSeq() / ParseDuration()
absl::StatusOr<HaltSpec> ParseHalt(absl::string_view spec);
absl::StatusOr<std::vector<TermStep>> ParseTermSeq(absl::string_view spec);
absl::StatusOr<double> ParseDuration(absl::string_view spec);  // 1.5, 2s, 3m

// Unescapes \n \t \0 \\ \r in a -d delimiter.
std::string UnescapeDelimiter(absl::string_view s);

// The --help text.
std::string HelpText();

}  // namespace pmap
}  // namespace mp

#endif  // MP_TOOLS_PMAP_OPTIONS_H_
