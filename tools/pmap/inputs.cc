#include "tools/pmap/inputs.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "re2/re2.h"

namespace mp {
namespace pmap {

RecordReader::RecordReader(int fd, bool owned, std::string delim)
    : fd_(fd), owned_(owned), delim_(std::move(delim)) {}

RecordReader::~RecordReader() {
  if (owned_ && fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::optional<std::string>> RecordReader::Next() {
  while (true) {
    size_t at = buf_.find(delim_, pos_);
    if (at != std::string::npos) {
      std::string rec = buf_.substr(pos_, at - pos_);
      pos_ = at + delim_.size();
      return std::optional<std::string>(std::move(rec));
    }
    if (eof_) {
      if (pos_ < buf_.size()) {
        std::string rec = buf_.substr(pos_);
        pos_ = buf_.size();
        return std::optional<std::string>(std::move(rec));
      }
      return std::optional<std::string>();
    }
    // Compact, then read more.
    if (pos_ > 0) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    char chunk[65536];
    absl::StatusOr<size_t> n = ReadSome(fd_, chunk, sizeof(chunk));
    if (!n.ok()) return n.status();
    if (*n == 0) {
      eof_ = true;
    } else {
      buf_.append(chunk, *n);
    }
  }
}

namespace {

absl::StatusOr<std::unique_ptr<RecordReader>> OpenReader(
    const std::string& path, const std::string& delim) {
  if (path == "-") return std::make_unique<RecordReader>(0, false, delim);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  return std::make_unique<RecordReader>(fd, true, delim);
}

absl::StatusOr<std::unique_ptr<re2::RE2>> Compile(const std::string& pattern,
                                                  const char* option) {
  if (pattern.empty()) return std::unique_ptr<re2::RE2>();
  auto re = std::make_unique<re2::RE2>(pattern, re2::RE2::Quiet);
  if (!re->ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad regular expression for ", option, ": ", re->error()));
  }
  return re;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadAllRecords(
    const std::string& path, const std::string& delim) {
  absl::StatusOr<std::unique_ptr<RecordReader>> r = OpenReader(path, delim);
  if (!r.ok()) return r.status();
  std::vector<std::string> out;
  while (true) {
    absl::StatusOr<std::optional<std::string>> rec = (*r)->Next();
    if (!rec.ok()) {
      return absl::Status(rec.status().code(),
                          absl::StrCat("reading ", path, ": ",
                                       rec.status().message()));
    }
    if (!rec->has_value()) break;
    out.push_back(**std::move(rec));
  }
  return out;
}

InputGenerator::~InputGenerator() = default;

absl::StatusOr<std::unique_ptr<InputGenerator>> InputGenerator::Create(
    const Options& options) {
  std::unique_ptr<InputGenerator> g(new InputGenerator());
  auto colsep = Compile(
      options.colsep.empty() ? "" : "(" + options.colsep + ")", "--colsep");
  if (!colsep.ok()) return colsep.status();
  g->colsep_ = *std::move(colsep);
  auto match = Compile(options.match, "--match");
  if (!match.ok()) return match.status();
  g->match_ = *std::move(match);
  auto filter = Compile(options.filter, "--filter");
  if (!filter.ok()) return filter.status();
  g->filter_ = *std::move(filter);
  g->skip_empty_ = options.skip_empty;

  std::vector<InputSource> sources = options.sources;
  if (sources.empty()) {
    InputSource stdin_source;
    stdin_source.kind = InputSource::kFile;
    stdin_source.path = "-";
    sources.push_back(stdin_source);
  }
  if (sources.size() == 1 && sources[0].kind == InputSource::kFile) {
    auto r = OpenReader(sources[0].path, options.delimiter);
    if (!r.ok()) return r.status();
    g->reader_ = *std::move(r);
    return g;
  }
  for (const InputSource& s : sources) {
    if (s.kind == InputSource::kArgs) {
      g->sources_.push_back(s.values);
    } else {
      auto all = ReadAllRecords(s.path, options.delimiter);
      if (!all.ok()) return all.status();
      g->sources_.push_back(*std::move(all));
    }
    const int index = static_cast<int>(g->sources_.size()) - 1;
    if (s.linked && !g->groups_.empty()) {
      g->groups_.back().push_back(index);
    } else {
      g->groups_.push_back({index});
    }
  }
  for (const auto& group : g->groups_) {
    size_t len = SIZE_MAX;
    for (int idx : group) len = std::min(len, g->sources_[idx].size());
    g->group_len_.push_back(len);
    if (len == 0) g->done_ = true;  // an empty source: no combinations
  }
  g->counter_.assign(g->groups_.size(), 0);
  return g;
}

absl::StatusOr<std::optional<Arg>> InputGenerator::NextRaw() {
  if (reader_ != nullptr) {
    absl::StatusOr<std::optional<std::string>> rec = reader_->Next();
    if (!rec.ok()) return rec.status();
    if (!rec->has_value()) return std::optional<Arg>();
    return std::optional<Arg>(Arg{**std::move(rec)});
  }
  if (done_) return std::optional<Arg>();
  Arg arg;
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (int idx : groups_[g]) arg.push_back(sources_[idx][counter_[g]]);
  }
  // Advance: the last group varies fastest.
  size_t g = groups_.size();
  while (g > 0) {
    --g;
    if (++counter_[g] < group_len_[g]) break;
    counter_[g] = 0;
    if (g == 0) done_ = true;
  }
  if (groups_.empty()) done_ = true;
  return std::optional<Arg>(std::move(arg));
}

absl::StatusOr<std::optional<Input>> InputGenerator::Next() {
  while (true) {
    absl::StatusOr<std::optional<Arg>> raw = NextRaw();
    if (!raw.ok()) return raw.status();
    if (!raw->has_value()) return std::optional<Input>();
    Input in;
    in.values = **std::move(raw);
    if (colsep_ != nullptr) {
      Arg cols;
      for (const std::string& v : in.values) {
        re2::StringPiece rest(v.data(), v.size());
        re2::StringPiece m;
        while (!rest.empty() &&
               re2::RE2::PartialMatch(rest, *colsep_, &m) && !m.empty()) {
          size_t at = m.data() - rest.data();
          cols.emplace_back(rest.data(), at);
          rest.remove_prefix(at + m.size());
        }
        cols.emplace_back(rest.data(), rest.size());
      }
      in.values = std::move(cols);
    }
    if (skip_empty_) {
      bool all_empty = true;
      for (const std::string& v : in.values) all_empty &= v.empty();
      if (all_empty) continue;
    }
    if (filter_ != nullptr || match_ != nullptr) {
      std::string joined;
      for (size_t i = 0; i < in.values.size(); ++i) {
        if (i > 0) joined += ' ';
        joined += in.values[i];
      }
      if (filter_ != nullptr && !re2::RE2::PartialMatch(joined, *filter_)) {
        continue;
      }
      if (match_ != nullptr) {
        const int n = match_->NumberOfCapturingGroups();
        std::vector<re2::StringPiece> groups(n + 1);
        if (!match_->Match(joined, 0, joined.size(), re2::RE2::UNANCHORED,
                           groups.data(), n + 1)) {
          ++skipped_by_match_;
          continue;
        }
        for (int k = 1; k <= n; ++k) {
          in.captures.emplace_back(groups[k].data(), groups[k].size());
        }
      }
    }
    return std::optional<Input>(std::move(in));
  }
}

}  // namespace pmap
}  // namespace mp
