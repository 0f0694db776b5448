#include "tools/pmap/options.h"

#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mp {
namespace pmap {
namespace {

absl::Status Bad(absl::string_view option, absl::string_view value,
                 absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad value '", value, "' for ", option, ": ", why));
}

bool IsSeparator(absl::string_view a) {
  return a == ":::" || a == ":::+" || a == "::::" || a == "::::+";
}

int SignalByName(absl::string_view name) {
  static const struct {
    const char* name;
    int sig;
  } kSignals[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},
      {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
      {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
      {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
  };
  if (absl::StartsWith(name, "SIG")) name.remove_prefix(3);
  for (const auto& s : kSignals) {
    if (name == s.name) return s.sig;
  }
  int n;
  if (absl::SimpleAtoi(name, &n) && n > 0 && n < NSIG) return n;
  return 0;
}

}  // namespace

std::string UnescapeDelimiter(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      switch (s[++i]) {
        case 'n': out += '\n'; continue;
        case 't': out += '\t'; continue;
        case 'r': out += '\r'; continue;
        case '0': out += '\0'; continue;
        case '\\': out += '\\'; continue;
        default: out += '\\'; out += s[i]; continue;
      }
    }
    out += s[i];
  }
  return out;
}

absl::StatusOr<int> ParseJobs(absl::string_view spec, int cpus,
                              int unlimited) {
  std::string s = std::string(absl::StripAsciiWhitespace(spec));
  if (s.empty()) return Bad("-j", spec, "empty");
  int n;
  if (absl::EndsWith(s, "%")) {
    double pct;
    if (!absl::SimpleAtod(s.substr(0, s.size() - 1), &pct) || pct < 0) {
      return Bad("-j", spec, "expected N%");
    }
    return std::max(1, static_cast<int>(cpus * pct / 100));
  }
  if (s[0] == '+' || s[0] == '-') {
    if (!absl::SimpleAtoi(s.substr(1), &n) || n < 0) {
      return Bad("-j", spec, "expected +N or -N");
    }
    return std::max(1, s[0] == '+' ? cpus + n : cpus - n);
  }
  if (!absl::SimpleAtoi(s, &n) || n < 0) {
    return Bad("-j", spec, "expected a number, N%, +N or -N");
  }
  return n == 0 ? unlimited : n;
}

absl::StatusOr<HaltSpec> ParseHalt(absl::string_view spec) {
  HaltSpec h;
  if (spec == "never" || spec == "0") return h;
  if (spec == "1") {
    h.when = HaltSpec::kSoon;
    return h;
  }
  if (spec == "2") {
    h.when = HaltSpec::kNow;
    return h;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(spec, ',');
  if (parts.size() != 2) {
    return Bad("--halt", spec, "expected never, now|soon,fail|success|done=N|P%");
  }
  if (parts[0] == "now") {
    h.when = HaltSpec::kNow;
  } else if (parts[0] == "soon") {
    h.when = HaltSpec::kSoon;
  } else {
    return Bad("--halt", spec, "expected now or soon");
  }
  std::pair<absl::string_view, absl::string_view> kv =
      absl::StrSplit(parts[1], absl::MaxSplits('=', 1));
  if (kv.first == "fail") {
    h.what = HaltSpec::kFail;
  } else if (kv.first == "success") {
    h.what = HaltSpec::kSuccess;
  } else if (kv.first == "done") {
    h.what = HaltSpec::kDone;
  } else {
    return Bad("--halt", spec, "expected fail, success or done");
  }
  absl::string_view num = kv.second;
  if (absl::EndsWith(num, "%")) {
    h.percent = true;
    num.remove_suffix(1);
  }
  if (!absl::SimpleAtod(num, &h.count) || !(h.count > 0) ||
      (h.percent && h.count > 100)) {
    return Bad("--halt", spec, "expected a count > 0 or a percentage");
  }
  return h;
}

absl::StatusOr<std::vector<TermStep>> ParseTermSeq(absl::string_view spec) {
  std::vector<absl::string_view> parts = absl::StrSplit(spec, ',');
  std::vector<TermStep> steps;
  for (size_t i = 0; i < parts.size(); i += 2) {
    TermStep step;
    step.signal = SignalByName(parts[i]);
    if (step.signal == 0) return Bad("--term-seq", spec, "unknown signal");
    step.wait_ms = 0;
    if (i + 1 < parts.size() &&
        (!absl::SimpleAtoi(parts[i + 1], &step.wait_ms) || step.wait_ms < 0)) {
      return Bad("--term-seq", spec, "expected SIGNAL,MS,SIGNAL,MS...");
    }
    steps.push_back(step);
  }
  if (steps.empty()) return Bad("--term-seq", spec, "empty");
  return steps;
}

absl::StatusOr<double> ParseDuration(absl::string_view spec) {
  double mult = 1;
  absl::string_view s = spec;
  if (!s.empty()) {
    switch (s.back()) {
      case 's': mult = 1; s.remove_suffix(1); break;
      case 'm': mult = 60; s.remove_suffix(1); break;
      case 'h': mult = 3600; s.remove_suffix(1); break;
      case 'd': mult = 86400; s.remove_suffix(1); break;
    }
  }
  double v;
  if (!absl::SimpleAtod(s, &v) || !(v >= 0) || std::isinf(v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration '", spec, "' (expected seconds, e.g. 1.5)"));
  }
  return v * mult;
}

absl::StatusOr<Options> ParseArgs(const std::vector<std::string>& args,
                                  int cpus) {
  Options o;
  o.jobs = std::max(1, cpus);
  o.term_seq = {{SIGTERM, 200}, {SIGTERM, 100}, {SIGTERM, 50}, {SIGKILL, 25}};
  std::string jobs_spec;
  size_t i = 0;
  // Takes the value of an option: attached ("-j4", "--jobs=4") or next.
  auto value = [&](absl::string_view name, absl::string_view attached,
                   bool has_attached) -> absl::StatusOr<std::string> {
    if (has_attached) return std::string(attached);
    if (i + 1 >= args.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("option ", name, " needs a value"));
    }
    return args[++i];
  };
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-' || IsSeparator(a)) break;
    std::string name = a, attached;
    bool has_attached = false;
    if (absl::StartsWith(a, "--")) {
      size_t eq = a.find('=');
      if (eq != std::string::npos) {
        name = a.substr(0, eq);
        attached = a.substr(eq + 1);
        has_attached = true;
      }
    } else if (a.size() > 2) {
      name = a.substr(0, 2);
      attached = a.substr(2);
      has_attached = true;
    }
    auto flag = [&](bool* b) -> absl::Status {
      if (has_attached) {
        return absl::InvalidArgumentError(
            absl::StrCat("option ", name, " takes no value: ", a));
      }
      *b = true;
      return absl::OkStatus();
    };
    absl::Status st;
    auto get = [&]() { return value(name, attached, has_attached); };
    auto get_int = [&](int min, int* out) -> absl::Status {
      absl::StatusOr<std::string> v = get();
      if (!v.ok()) return v.status();
      if (!absl::SimpleAtoi(*v, out) || *out < min) {
        return Bad(name, *v, absl::StrCat("expected an integer >= ", min));
      }
      return absl::OkStatus();
    };
    auto get_str = [&](std::string* out) -> absl::Status {
      absl::StatusOr<std::string> v = get();
      if (!v.ok()) return v.status();
      *out = *std::move(v);
      return absl::OkStatus();
    };
    auto get_duration = [&](double* out) -> absl::Status {
      absl::StatusOr<std::string> v = get();
      if (!v.ok()) return v.status();
      absl::StatusOr<double> d = ParseDuration(*v);
      if (!d.ok()) return Bad(name, *v, d.status().message());
      *out = *d;
      return absl::OkStatus();
    };
    bool ignored;
    if (name == "-j" || name == "--jobs" || name == "-P" ||
        name == "--max-procs") {
      st = get_str(&jobs_spec);
    } else if (name == "-n" || name == "--max-args") {
      st = get_int(1, &o.max_args);
    } else if (name == "-a" || name == "--arg-file") {
      InputSource src;
      src.kind = InputSource::kFile;
      st = get_str(&src.path);
      o.sources.push_back(std::move(src));
    } else if (name == "-d" || name == "--delimiter") {
      std::string d;
      st = get_str(&d);
      if (st.ok()) {
        o.delimiter = UnescapeDelimiter(d);
        if (o.delimiter.empty()) st = Bad(name, d, "empty delimiter");
      }
    } else if (name == "-0" || name == "--null") {
      st = flag(&ignored);
      o.delimiter = std::string(1, '\0');
    } else if (name == "-q" || name == "--quote" || name == "--no-shell") {
      st = flag(&o.no_shell);
    } else if (name == "-k" || name == "--keep-order") {
      st = flag(&o.keep_order);
    } else if (name == "-u" || name == "--ungroup") {
      st = flag(&ignored);
      o.output = OutputMode::kUngroup;
    } else if (name == "--group") {
      st = flag(&ignored);
      o.output = OutputMode::kGroup;
    } else if (name == "--line-buffer" || name == "--lb") {
      st = flag(&ignored);
      o.output = OutputMode::kLineBuffer;
    } else if (name == "--tag") {
      st = flag(&o.tag);
    } else if (name == "-C" || name == "--colsep") {
      st = get_str(&o.colsep);
    } else if (name == "--match") {
      st = get_str(&o.match);
    } else if (name == "--filter") {
      st = get_str(&o.filter);
    } else if (name == "--joblog") {
      st = get_str(&o.joblog);
    } else if (name == "--resume") {
      st = flag(&o.resume);
    } else if (name == "--resume-failed") {
      st = flag(&o.resume_failed);
    } else if (name == "--bar") {
      st = flag(&o.bar);
    } else if (name == "--progress") {
      st = flag(&o.progress);
    } else if (name == "--eta") {
      st = flag(&o.eta);
    } else if (name == "--timeout") {
      st = get_duration(&o.timeout);
    } else if (name == "--retries") {
      st = get_int(0, &o.retries);
      o.retries = std::max(1, o.retries);
    } else if (name == "--halt" || name == "--halt-on-error") {
      std::string h;
      st = get_str(&h);
      if (st.ok()) {
        absl::StatusOr<HaltSpec> hs = ParseHalt(h);
        if (hs.ok()) o.halt = *hs; else st = hs.status();
      }
    } else if (name == "--term-seq") {
      std::string t;
      st = get_str(&t);
      if (st.ok()) {
        absl::StatusOr<std::vector<TermStep>> ts = ParseTermSeq(t);
        if (ts.ok()) o.term_seq = *ts; else st = ts.status();
      }
    } else if (name == "--delay") {
      st = get_duration(&o.delay);
    } else if (name == "--dry-run" || name == "--dryrun") {
      st = flag(&o.dry_run);
    } else if (name == "-v" || name == "--verbose") {
      st = flag(&o.verbose);
    } else if (name == "-r" || name == "--no-run-if-empty") {
      st = flag(&o.skip_empty);
    } else if (name == "-h" || name == "--help") {
      st = flag(&o.help);
    } else if (name == "-V" || name == "--version") {
      st = flag(&o.version);
    } else if (name == "--will-cite" || name == "--bibtex") {
      st = flag(&ignored);  // GNU parallel compatibility: nothing to silence
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown option: ", a));
    }
    if (!st.ok()) return st;
  }
  if (o.help || o.version) return o;

  // The command, up to the first separator.
  for (; i < args.size() && !IsSeparator(args[i]); ++i) {
    o.command.push_back(args[i]);
  }
  // Input sources.
  while (i < args.size()) {
    const std::string sep = args[i++];
    const bool files = absl::StartsWith(sep, "::::");
    const bool linked = absl::EndsWith(sep, "+");
    if (!files) {
      InputSource src;
      src.kind = InputSource::kArgs;
      src.linked = linked;
      for (; i < args.size() && !IsSeparator(args[i]); ++i) {
        src.values.push_back(args[i]);
      }
      o.sources.push_back(std::move(src));
    } else {
      bool first = true;
      size_t start = i;
      for (; i < args.size() && !IsSeparator(args[i]); ++i) {
        InputSource src;
        src.kind = InputSource::kFile;
        src.path = args[i];
        src.linked = linked && first;
        first = false;
        o.sources.push_back(std::move(src));
      }
      if (i == start) {
        return absl::InvalidArgumentError(
            absl::StrCat(sep, " needs at least one file"));
      }
    }
  }
  if (!o.sources.empty() && o.sources[0].linked) {
    return absl::InvalidArgumentError(":::+ needs a source before it");
  }
  if (o.command.empty()) {
    return absl::InvalidArgumentError(
        "no command given (usage: pmap [options] COMMAND [ARGS...] "
        "[::: INPUTS...]; see pmap --help)");
  }
  // -j 0: as many as the fd limit allows (each job holds up to 3 fds here),
  // at most 1024.
  int unlimited = 1024;
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    unlimited = static_cast<int>(std::clamp<rlim_t>((rl.rlim_cur - 32) / 3,
                                                    1, 1024));
  }
  if (!jobs_spec.empty()) {
    absl::StatusOr<int> j = ParseJobs(jobs_spec, cpus, unlimited);
    if (!j.ok()) return j.status();
    o.jobs = *j;
  }
  if (o.resume && o.resume_failed) o.resume = false;  // failed implies resume
  if ((o.resume || o.resume_failed) && o.joblog.empty()) {
    return absl::InvalidArgumentError("--resume needs --joblog FILE");
  }
  if (o.no_shell && o.command.size() == 1 &&
      o.command[0].find(' ') != std::string::npos) {
    // Allowed (a program name with a space), nothing to do.
  }
  return o;
}

std::string HelpText() {
  return R"(Usage: pmap [OPTIONS] COMMAND [ARGS...] [::: INPUTS...] [:::: FILES...]

Runs COMMAND once per input, several at a time, like GNU parallel.

Inputs (one job per input; several sources form their cross product):
  ::: A B C          the words A, B, C are inputs
  :::+ X Y Z         link this source with the previous one (lockstep)
  :::: FILE...       each line of FILE is an input ("-" = standard input)
  ::::+ FILE         link this file with the previous source
  -a, --arg-file F   like :::: F
  (none)             lines of standard input
  -0, --null         inputs are separated by NUL instead of newline
  -d, --delimiter D  inputs are separated by D (\n \t \0 \\ understood)
  -r, --no-run-if-empty  skip empty inputs
  -C, --colsep RE    split each input into columns at matches of the re2
                     regular expression RE ({1}, {2}, ...)
  --match RE         run only inputs that match RE; its capture groups are
                     {m1}, {m2}, ...; the number skipped is reported on stderr
  --filter RE        run only inputs that match RE (silently)

Replacement strings in COMMAND (values are shell-quoted):
  {}      the input          {.}   without extension    {/}  basename
  {//}    dirname            {/.}  basename without extension
  {N}     Nth source/column, or Nth argument with -n; also {N.} {N/}
          {N//} {N/.}
  {#}     job sequence number (1, 2, ...)   {%}  job slot (1..-j)
  {mN}    Nth capture group of --match
  A command without replacement strings gets " {}" appended.

Running:
  -j, --jobs N       run N jobs at once (default: number of cores); 0: as
                     many as possible; N%: percent of cores; +N, -N: cores
                     plus/minus N
  -n, --max-args N   N inputs per job ({} expands to all of them)
  -q, --no-shell     run COMMAND directly, without /bin/sh (no quoting)
                     (--quote is accepted as an alias)
  --timeout SECS     kill a job (its process group, with --term-seq) after
                     SECS seconds (suffixes s, m, h, d)
  --retries N        run a failing job up to N times in total
  --halt WHEN,WHAT=N stop on a condition: WHEN is now (kill running jobs)
                     or soon (let them finish); WHAT is fail, success or
                     done; N is a count or a percentage (fail=10%).
                     --halt never is the default
  --term-seq SEQ     signals and waits (ms) to stop a job; default
                     TERM,200,TERM,100,TERM,50,KILL,25
  --delay SECS       wait SECS between job starts
  --dry-run          print the commands instead of running them
  -v, --verbose      print each command on stderr before it runs

Output:
  --group            print each job's output when it ends, whole (default)
  -k, --keep-order   print outputs in input order (jobs still run in
                     parallel)
  --line-buffer      print complete lines as soon as they arrive
  -u, --ungroup      do not capture: jobs write straight to the terminal
  --tag              prefix each output line with the input and a tab
  --joblog FILE      log each job (GNU parallel's tab-separated format)
  --resume           with --joblog: skip jobs already in FILE
  --resume-failed    with --joblog: skip only jobs that succeeded
  --bar              progress bar with ETA on stderr (when a terminal)
  --progress, --eta  progress / ETA line on stderr (when a terminal)

Other:
  -h, --help         this text
  -V, --version      version
  --will-cite        accepted for GNU parallel compatibility (no effect)

Every job runs in its own process group, through /bin/sh -c (a command
that is a single program with plain words is exec'd directly, which the
shell would do anyway). Jobs get /dev/null as standard input, and
$PARALLEL_SEQ ({#}) and $PARALLEL_JOBSLOT ({%}) in their environment.

Exit status: 0 when every job succeeded; 1-100 the number of failed jobs;
101 when more than 100 failed; with --halt ...fail=1, the failing job's
status; 130/143 after SIGINT/SIGTERM (jobs are terminated first), 141
when the reader of the output went away; 255 for
errors of pmap itself (bad options, unreadable input files).
)";
}

}  // namespace pmap
}  // namespace mp
