// -----------------------------------------------------------------------------
// File: tools/pmap/inputs.h
// -----------------------------------------------------------------------------
//
// Where pmap's inputs come from: `RecordReader` splits a file or stdin into
// records (streaming); `InputGenerator` combines the sources of the command
// line (::: words, :::: files, -a files, stdin) into a stream of inputs,
// applying --colsep, --match, --filter and -r.
//
//   absl::StatusOr<std::unique_ptr<InputGenerator>> g =
//       InputGenerator::Create(options);
//   while (true) {
//     absl::StatusOr<std::optional<Input>> in = (*g)->Next();
//     if (!in.ok()) return in.status();      // unreadable file
//     if (!in->has_value()) break;            // no more inputs
//     Use((*in)->values);                     // one value per source/column
//   }
//
// One file source (or stdin) is read lazily, so a million lines need no
// memory; several sources are read first to form their cross product.

#ifndef MP_TOOLS_PMAP_INPUTS_H_
#define MP_TOOLS_PMAP_INPUTS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "process/fd.h"
#include "tools/pmap/command.h"
#include "tools/pmap/options.h"

namespace re2 {
class RE2;
}

namespace mp {
namespace pmap {

class RecordReader {
 public:
  // Reads `fd` (owned when `owned`) as records ending in `delim`.
  RecordReader(int fd, bool owned, std::string delim);
  ~RecordReader();
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // RecordReader::Next()
  //
  // The next record without its delimiter; nullopt at end of input. A last
  // record without a trailing delimiter still counts; empty records count.
  absl::StatusOr<std::optional<std::string>> Next();

 private:
  int fd_;
  bool owned_;
  std::string delim_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
};

// ReadAllRecords()
//
// Every record of `path` ("-" = stdin). Errors: the errno of open/read,
// naming the file.
absl::StatusOr<std::vector<std::string>> ReadAllRecords(
    const std::string& path, const std::string& delim);

struct Input {
  Arg values;                         // per source, or per --colsep column
  std::vector<std::string> captures;  // --match groups
};

class InputGenerator {
 public:
  // InputGenerator::Create()
  //
  // Opens the sources of `options`. Errors: `kInvalidArgument` for a bad
  // --colsep/--match/--filter expression; the errno of opening a file.
  static absl::StatusOr<std::unique_ptr<InputGenerator>> Create(
      const Options& options);
  ~InputGenerator();

  // InputGenerator::Next()
  //
  // The next input that passes --match, --filter and -r; nullopt at the end.
  absl::StatusOr<std::optional<Input>> Next();

  // Inputs dropped because they did not match --match.
  int64_t skipped_by_match() const { return skipped_by_match_; }

 private:
  InputGenerator() = default;
  absl::StatusOr<std::optional<Arg>> NextRaw();

  // Streaming: one file source.
  std::unique_ptr<RecordReader> reader_;
  // Materialized: every source, grouped by :::+ links.
  std::vector<std::vector<std::string>> sources_;
  std::vector<std::vector<int>> groups_;  // indices into sources_
  std::vector<size_t> group_len_;
  std::vector<size_t> counter_;
  bool done_ = false;

  std::unique_ptr<re2::RE2> colsep_, match_, filter_;
  bool skip_empty_ = false;
  int64_t skipped_by_match_ = 0;
};

}  // namespace pmap
}  // namespace mp

#endif  // MP_TOOLS_PMAP_INPUTS_H_
