#include "tools/pmap/joblog.h"

#include <errno.h>

#include <fstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace mp {
namespace pmap {

std::string JoblogHeader() {
  return "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\t"
         "Command\n";
}

std::string FormatJoblogLine(const JoblogEntry& e) {
  return absl::StrFormat("%d\t:\t%.3f\t%10.3f\t%d\t%d\t%d\t%d\t%s\n", e.seq,
                         e.start, e.runtime, e.send, e.receive, e.exitval,
                         e.signal, absl::StrReplaceAll(e.command, {{"\n", "\\n"}}));
}

bool JoblogHistory::ShouldSkip(int64_t seq, bool rerun_failed) const {
  auto it = succeeded.find(seq);
  if (it == succeeded.end()) return false;
  return rerun_failed ? it->second : true;
}

absl::StatusOr<JoblogHistory> ReadJoblog(const std::string& path) {
  JoblogHistory h;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return h;
    return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  }
  std::string line;
  while (std::getline(in, line)) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::MaxSplits('\t', 8));
    if (f.size() < 9) continue;
    int64_t seq;
    int exitval, sig;
    if (!absl::SimpleAtoi(f[0], &seq) || !absl::SimpleAtoi(f[6], &exitval) ||
        !absl::SimpleAtoi(f[7], &sig)) {
      continue;
    }
    h.succeeded[seq] = exitval == 0 && sig == 0;
  }
  if (in.bad()) return absl::ErrnoToStatus(errno, absl::StrCat("read ", path));
  return h;
}

}  // namespace pmap
}  // namespace mp
