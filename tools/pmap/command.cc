#include "tools/pmap/command.h"

#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mp {
namespace pmap {
namespace {

bool IsSafeForShell(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '+' || c == '.' || c == '/' || c == '-';
}

// Literal characters that mean nothing special to sh in a plain word.
bool IsPlainWordChar(char c) {
  return IsSafeForShell(c) || c == ',' || c == ':' || c == '@' || c == '%';
}

bool IsShellBuiltinOrKeyword(absl::string_view w) {
  static const char* const kNames[] = {
      ".",     ":",      "[",        "alias",  "bg",      "break",  "cd",
      "chdir", "command", "continue", "echo",   "eval",    "exec",   "exit",
      "export", "fc",    "fg",       "getopts", "hash",   "jobs",   "kill",
      "local", "printf", "pwd",      "read",   "readonly", "return", "set",
      "shift", "test",   "times",    "trap",   "type",    "ulimit", "umask",
      "unalias", "unset", "wait",    "if",     "then",    "else",   "elif",
      "fi",    "case",   "esac",     "for",    "while",   "until",  "do",
      "done",  "function", "select", "in",     "time",    "source", "let",
      "declare", "typeset", "builtin", "enable", "shopt", "history", "true",
      "false",
  };
  for (const char* n : kNames) {
    if (w == n) return true;
  }
  return false;
}

}  // namespace

std::string ShellQuote(absl::string_view s) {
  bool safe = !s.empty();
  for (char c : s) {
    if (!IsSafeForShell(c)) {
      safe = false;
      break;
    }
  }
  if (safe) return std::string(s);
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\"'\"'";
    } else {
      out += c;
    }
  }
  out += '\'';
  // 'a'"'"'' -> 'a'"'"  and  ''"'"'' -> "'"
  if (out.size() > 2 && absl::EndsWith(out, "''")) out.resize(out.size() - 2);
  if (out.size() > 2 && absl::StartsWith(out, "''")) out.erase(0, 2);
  return out;
}

std::string RemoveExtension(absl::string_view s) {
  size_t slash = s.rfind('/');
  size_t dot = s.rfind('.');
  if (dot == absl::string_view::npos ||
      (slash != absl::string_view::npos && dot < slash)) {
    return std::string(s);
  }
  return std::string(s.substr(0, dot));
}

std::string Basename(absl::string_view s) {
  size_t slash = s.rfind('/');
  return std::string(slash == absl::string_view::npos ? s : s.substr(slash + 1));
}

std::string Dirname(absl::string_view s) {
  // Perl's File::Basename::dirname, which GNU parallel uses.
  while (s.size() > 1 && s.back() == '/') s.remove_suffix(1);
  size_t slash = s.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  absl::string_view d = s.substr(0, slash);
  while (d.size() > 1 && d.back() == '/') d.remove_suffix(1);
  if (d.empty()) return "/";
  return std::string(d);
}

std::vector<CommandTemplate::Segment> CommandTemplate::ParseWord(
    absl::string_view word, bool* has_replacement) {
  std::vector<Segment> out;
  auto literal = [&](absl::string_view t) {
    if (t.empty()) return;
    if (!out.empty() && out.back().kind == Kind::kLiteral) {
      out.back().text.append(t.data(), t.size());
    } else {
      Segment s;
      s.text = std::string(t);
      out.push_back(std::move(s));
    }
  };
  size_t i = 0;
  while (i < word.size()) {
    size_t open = word.find('{', i);
    if (open == absl::string_view::npos) {
      literal(word.substr(i));
      break;
    }
    literal(word.substr(i, open - i));
    size_t close = word.find('}', open + 1);
    if (close == absl::string_view::npos) {
      literal(word.substr(open));
      break;
    }
    absl::string_view inner = word.substr(open + 1, close - open - 1);
    Segment s;
    bool ok = true;
    // Split a leading number (position) or mN (capture) from the transform.
    size_t digits = 0;
    bool capture = false;
    if (!inner.empty() && inner[0] == 'm' && inner.size() > 1 &&
        absl::ascii_isdigit(static_cast<unsigned char>(inner[1]))) {
      capture = true;
      inner.remove_prefix(1);
    }
    while (digits < inner.size() &&
           absl::ascii_isdigit(static_cast<unsigned char>(inner[digits]))) {
      ++digits;
    }
    absl::string_view transform = inner.substr(digits);
    if (digits > 0) {
      ok = absl::SimpleAtoi(inner.substr(0, digits), &s.index) && s.index > 0;
      s.kind = capture ? Kind::kCapture : Kind::kPosition;
    } else if (transform == "#") {
      s.kind = Kind::kSeq;
      transform = "";
    } else if (transform == "%") {
      s.kind = Kind::kSlot;
      transform = "";
    } else {
      s.kind = Kind::kAll;
    }
    if (transform.empty()) {
      s.transform = Transform::kNone;
    } else if (transform == ".") {
      s.transform = Transform::kNoExt;
    } else if (transform == "/") {
      s.transform = Transform::kBase;
    } else if (transform == "//") {
      s.transform = Transform::kDir;
    } else if (transform == "/.") {
      s.transform = Transform::kBaseNoExt;
    } else {
      ok = false;
    }
    if (capture && s.transform != Transform::kNone) ok = false;
    if (!ok) {
      // Not a replacement string: keep the '{' and go on after it.
      literal(word.substr(open, 1));
      i = open + 1;
      continue;
    }
    *has_replacement = true;
    out.push_back(std::move(s));
    i = close + 1;
  }
  return out;
}

absl::StatusOr<CommandTemplate> CommandTemplate::Parse(
    const std::vector<std::string>& words, bool no_shell) {
  if (words.empty() || (words.size() == 1 && words[0].empty())) {
    return absl::InvalidArgumentError("no command given");
  }
  CommandTemplate t;
  t.no_shell_ = no_shell;
  for (const std::string& w : words) {
    t.words_.push_back(ParseWord(w, &t.has_replacement_));
  }
  if (!t.has_replacement_) {
    Segment s;
    s.kind = Kind::kAll;
    t.words_.push_back({s});
  }
  return t;
}

std::vector<std::string> CommandTemplate::Values(const Segment& s,
                                                 const JobValues& v) const {
  std::vector<std::string> raw;
  switch (s.kind) {
    case Kind::kLiteral:
      return {s.text};
    case Kind::kSeq:
      return {absl::StrCat(v.seq)};
    case Kind::kSlot:
      return {absl::StrCat(v.slot)};
    case Kind::kAll:
      for (const Arg& a : v.args) {
        for (const std::string& x : a) raw.push_back(x);
      }
      break;
    case Kind::kPosition: {
      // Positions count the values of all args in order: the Nth source or
      // column for one arg, the Nth arg for one column (-n N).
      int n = s.index;
      std::string found;
      for (const Arg& a : v.args) {
        for (const std::string& x : a) {
          if (--n == 0) found = x;
        }
      }
      raw.push_back(found);
      break;
    }
    case Kind::kCapture:
      for (const auto& groups : v.captures) {
        raw.push_back(s.index <= static_cast<int>(groups.size())
                          ? groups[s.index - 1]
                          : std::string());
      }
      if (raw.empty()) raw.push_back("");
      break;
  }
  for (std::string& x : raw) {
    switch (s.transform) {
      case Transform::kNone:
        break;
      case Transform::kNoExt:
        x = RemoveExtension(x);
        break;
      case Transform::kBase:
        x = Basename(x);
        break;
      case Transform::kDir:
        x = Dirname(x);
        break;
      case Transform::kBaseNoExt:
        x = RemoveExtension(Basename(x));
        break;
    }
  }
  return raw;
}

std::string CommandTemplate::ShellCommand(const JobValues& v) const {
  std::string out;
  for (size_t w = 0; w < words_.size(); ++w) {
    if (w > 0) out += ' ';
    for (const Segment& s : words_[w]) {
      if (s.kind == Kind::kLiteral) {
        out += s.text;
        continue;
      }
      std::vector<std::string> values = Values(s, v);
      for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out += ' ';
        // {#} and {%} are numbers: nothing to quote.
        out += ShellQuote(values[i]);
      }
    }
  }
  return out;
}

std::vector<std::string> CommandTemplate::Argv(const JobValues& v) const {
  std::vector<std::string> argv;
  for (const Word& word : words_) {
    std::string current;
    bool started = false;
    for (const Segment& s : word) {
      if (s.kind == Kind::kLiteral) {
        current += s.text;
        started = true;
        continue;
      }
      std::vector<std::string> values = Values(s, v);
      for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) {
          argv.push_back(std::move(current));
          current.clear();
        }
        current += values[i];
        started = true;
      }
    }
    if (started) argv.push_back(std::move(current));
  }
  return argv;
}

std::string CommandTemplate::DirectProgram() const {
  if (no_shell_ || words_.empty()) return "";
  const Word& first = words_[0];
  if (first.size() != 1 || first[0].kind != Kind::kLiteral) return "";
  const std::string& prog = first[0].text;
  if (prog.empty() || IsShellBuiltinOrKeyword(prog)) return "";
  for (const Word& word : words_) {
    for (const Segment& s : word) {
      if (s.kind != Kind::kLiteral) continue;
      if (s.text.empty()) return "";
      for (char c : s.text) {
        if (!IsPlainWordChar(c)) return "";
      }
    }
    // A word made only of replacements could expand to nothing in the
    // shell only if a value were unquoted; ours are always quoted.
  }
  return prog;
}

}  // namespace pmap
}  // namespace mp
