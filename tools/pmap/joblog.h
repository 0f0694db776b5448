// -----------------------------------------------------------------------------
// File: tools/pmap/joblog.h
// -----------------------------------------------------------------------------
//
// GNU parallel's --joblog format, written and read back for --resume:
//
//   Seq  Host  Starttime       JobRuntime  Send  Receive  Exitval  Signal  Command
//   1    :     1795314004.722       0.004  0     2        0        0       echo 0
//
// (tab-separated; Starttime is Unix seconds with %.3f, JobRuntime %10.3f.)
//
//   std::string line = FormatJoblogLine(entry);
//   absl::StatusOr<JoblogHistory> h = ReadJoblog("jobs.log");
//   if (h->ShouldSkip(seq, /*failed_too=*/false)) ...

#ifndef MP_TOOLS_PMAP_JOBLOG_H_
#define MP_TOOLS_PMAP_JOBLOG_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace mp {
namespace pmap {

struct JoblogEntry {
  int64_t seq = 0;
  double start = 0;    // Unix time, seconds
  double runtime = 0;  // seconds
  int64_t send = 0;
  int64_t receive = 0;
  int exitval = 0;
  int signal = 0;
  std::string command;
};

// The header line, with its newline.
std::string JoblogHeader();

// One line, with its newline. Newlines in the command are written as "\n".
std::string FormatJoblogLine(const JoblogEntry& e);

// What an earlier run recorded: the last entry per sequence number.
struct JoblogHistory {
  absl::flat_hash_map<int64_t, bool> succeeded;  // seq -> exit 0 and no signal

  // ShouldSkip()
  //
  // --resume skips every recorded seq; --resume-failed (`rerun_failed`)
  // skips only those that succeeded.
  bool ShouldSkip(int64_t seq, bool rerun_failed) const;
};

// ReadJoblog()
//
// Parses a joblog; lines that are not entries (the header, junk) are
// skipped. A missing file is an empty history. Errors: other open/read
// errors.
absl::StatusOr<JoblogHistory> ReadJoblog(const std::string& path);

}  // namespace pmap
}  // namespace mp

#endif  // MP_TOOLS_PMAP_JOBLOG_H_
