#include "pool/internal/runner.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace mp {
namespace pool_internal {

uint32_t FunctionTable::Add(std::shared_ptr<ChunkRunner> runner,
                            std::pair<const void*, uintptr_t> key) {
  const bool keyed = key.first != nullptr || key.second != 0;
  if (keyed) {
    auto it = by_key_.find(key);
    if (it != by_key_.end()) return it->second;
  }
  runners_.push_back(std::move(runner));
  uint32_t index = static_cast<uint32_t>(runners_.size() - 1);
  if (keyed) by_key_.emplace(key, index);
  return index;
}

absl::Status FailureToStatus(const TaskFailure& f, int64_t base_index) {
  int64_t index = base_index + f.offset;
  auto code = static_cast<absl::StatusCode>(f.code);
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
  std::string what = f.type.empty() ? f.message : absl::StrCat(f.type, ": ", f.message);
  absl::Status s(code, absl::StrCat("task ", index, " failed in worker pid ",
                                    f.pid, ": ", what));
  s.SetPayload("mp.index", absl::Cord(absl::StrCat(index)));
  s.SetPayload("mp.pid", absl::Cord(absl::StrCat(f.pid)));
  if (!f.type.empty()) s.SetPayload("mp.exception_type", absl::Cord(f.type));
  return s;
}

absl::Status DecodeFailureStatus(absl::string_view bytes, int64_t base_index) {
  absl::StatusOr<TaskFailure> f = Decode<TaskFailure>(bytes);
  if (!f.ok()) {
    return absl::DataLossError(
        absl::StrCat("task ", base_index, ": corrupt failure report: ",
                     f.status().message()));
  }
  return FailureToStatus(*f, base_index);
}

}  // namespace pool_internal
}  // namespace mp
