#include "tools/psquare/mode.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace mp {
namespace psquare {
namespace {

std::vector<Mode>& Registry() {
  static auto* modes = new std::vector<Mode>;
  return *modes;
}

// One write(2) per line: output of concurrent processes stays line-whole.
void Line(const std::string& text) {
  std::string line = text + "\n";
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(1, line.data() + off, line.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace

ModeRegistrar::ModeRegistrar(const char* name, const char* help, ModeFn run) {
  Registry().push_back(Mode{name, help, run});
}

std::vector<Mode> Modes() {
  std::vector<Mode> modes = Registry();
  std::sort(modes.begin(), modes.end(), [](const Mode& a, const Mode& b) {
    if ((a.name == "serial") != (b.name == "serial")) return a.name == "serial";
    return a.name < b.name;
  });
  return modes;
}

const Mode* FindMode(const std::string& name) {
  for (const Mode& m : Registry()) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

int64_t SquareWork(int x, absl::Duration sleep) {
  Line(absl::StrCat("start process:", x));
  absl::SleepFor(sleep);
  int64_t y = static_cast<int64_t>(x) * x;
  Line(absl::StrCat("square ", x, ":", y));
  Line(absl::StrCat("end process:", x));
  return y;
}

absl::Status JoinAll(std::vector<Process>& processes) {
  for (Process& p : processes) {
    absl::Status joined = p.Join();
    if (!joined.ok()) return joined;
    if (p.exitcode() != 0) {
      return absl::InternalError(absl::StrCat(
          p.name(), " exited with code ", p.exitcode().value_or(-1)));
    }
  }
  return absl::OkStatus();
}

void PrintResults(absl::Span<const int64_t> squares) {
  for (size_t x = 0; x < squares.size(); ++x) {
    std::printf("result %d:%lld\n", static_cast<int>(x),
                static_cast<long long>(squares[x]));
  }
}

}  // namespace psquare
}  // namespace mp
