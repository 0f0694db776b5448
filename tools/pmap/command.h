// -----------------------------------------------------------------------------
// File: tools/pmap/command.h
// -----------------------------------------------------------------------------
//
// `mp::pmap::CommandTemplate` turns a command with replacement strings into the
// command line of one job, quoting every substituted value for /bin/sh.
//
//   absl::StatusOr<CommandTemplate> t =
//       CommandTemplate::Parse({"gzip", "-9", "{}"}, /*no_shell=*/false);
//   JobValues v{.args = {{"my file.txt"}}, .seq = 1, .slot = 1};
//   t->ShellCommand(v);   // "gzip -9 'my file.txt'"
//   t->Argv(v);           // {"gzip", "-9", "my file.txt"}
//
// Replacement strings (as GNU parallel's): {} {.} {/} {//} {/.} {#} {%},
// {N} {N.} {N/} {N//} {N/.} for the Nth value, and {mN} for the Nth capture
// group of --match. A command without any gets " {}" appended.

#ifndef MP_TOOLS_PMAP_COMMAND_H_
#define MP_TOOLS_PMAP_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mp {
namespace pmap {

// One input: a value per source (several ::: sources) or per --colsep column.
using Arg = std::vector<std::string>;

// What a job substitutes.
struct JobValues {
  std::vector<Arg> args;                      // -n N args
  std::vector<std::vector<std::string>> captures;  // --match groups per arg
  int64_t seq = 0;                            // {#}
  int slot = 0;                               // {%}
};

// ShellQuote()
//
// Quotes `s` for /bin/sh the way GNU parallel does: unchanged when it is
// made only of [A-Za-z0-9_+./-] (and not empty), else in single quotes with
// each ' written as '"'"'.
std::string ShellQuote(absl::string_view s);

class CommandTemplate {
 public:
  // CommandTemplate::Parse()
  //
  // `words` is the command as given on the command line. In shell mode the
  // words are joined with spaces and the result is shell code; with
  // `no_shell` each word is one argv entry.
  //
  // Errors: `kInvalidArgument` for an empty command.
  static absl::StatusOr<CommandTemplate> Parse(
      const std::vector<std::string>& words, bool no_shell);

  // The command line for /bin/sh -c, every value quoted.
  std::string ShellCommand(const JobValues& v) const;

  // The argv of the job run without a shell: values inserted verbatim, one
  // word per value of a multi-value replacement (-n 2: `x{}` -> xa b).
  std::vector<std::string> Argv(const JobValues& v) const;

  // CommandTemplate::DirectProgram()
  //
  // When running `sh -c` on this template would only run one program with
  // literal words (no shell syntax, no builtin such as echo or true), the
  // program name; pmap then execs it directly, saving the shell's start-up.
  // Empty otherwise.
  std::string DirectProgram() const;

  // True when the command names any replacement string (else {} was added).
  bool has_replacement() const { return has_replacement_; }

 private:
  enum class Kind { kLiteral, kAll, kPosition, kSeq, kSlot, kCapture };
  enum class Transform { kNone, kNoExt, kBase, kDir, kBaseNoExt };
  struct Segment {
    Kind kind = Kind::kLiteral;
    std::string text;  // literal text
    int index = 0;     // {N}, {mN}
    Transform transform = Transform::kNone;
  };
  using Word = std::vector<Segment>;

  // The values a replacement segment stands for.
  std::vector<std::string> Values(const Segment& s, const JobValues& v) const;
  static std::vector<Segment> ParseWord(absl::string_view word,
                                        bool* has_replacement);

  std::vector<Word> words_;
  bool no_shell_ = false;
  bool has_replacement_ = false;
};

// ApplyTransform helpers, exposed for tests: {.} {/} {//} {/.}.
std::string RemoveExtension(absl::string_view s);
std::string Basename(absl::string_view s);
std::string Dirname(absl::string_view s);

}  // namespace pmap
}  // namespace mp

#endif  // MP_TOOLS_PMAP_COMMAND_H_
