// -----------------------------------------------------------------------------
// File: pool/internal/runner.h
// -----------------------------------------------------------------------------
//
// What a worker runs. The pool keeps a table of `ChunkRunner`s (one per
// function it was asked to map or apply); a task names its runner by index
// and carries the encoded arguments of one chunk. A worker forked after a
// runner was added has its own copy of the table and runs the runner there.
//
// A failure travels back as an encoded `TaskFailure`: the offset of the item
// within the chunk, the exception's type and `what()`, and the worker's pid.

#ifndef MP_POOL_INTERNAL_RUNNER_H_
#define MP_POOL_INTERNAL_RUNNER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ipc/codec.h"

namespace mp {
namespace pool_internal {

struct TaskFailure {
  uint32_t offset = 0;     // index of the failing item within the chunk
  int32_t code = 2;        // absl::StatusCode (kUnknown for an exception)
  std::string type;        // demangled exception type, "" if not one
  std::string message;     // what() or the status message
  int64_t pid = 0;         // the worker's pid
  MP_CODEC_FIELDS(offset, code, type, message, pid);
};

// Smallest `std::string` result that travels bare (`ChunkRunner::RunBare`).
inline constexpr size_t kBareStringMin = 64 * 1024;

class ChunkRunner {
 public:
  virtual ~ChunkRunner() = default;

  // ChunkRunner::Run()
  //
  // Decodes `args` (one chunk), runs the function on each item and appends
  // the encoded results to `*out`. On the first item that throws (or bad
  // input) returns false with `*failure` filled (pid left to the caller).
  // Never throws.
  virtual bool Run(absl::string_view args, std::string* out,
                   TaskFailure* failure) noexcept = 0;

  // ChunkRunner::RunBare()
  //
  // Like `Run()`, but when the chunk's only result is a `std::string` of at
  // least `kBareStringMin` bytes, moves it into `*bare` (left empty
  // otherwise) and appends nothing to `*out`: the worker sends those bytes
  // as they are (no encode copy) and the pool hands the received buffer to
  // the caller as the string itself (`Core::TaskSpec::done_bare`).
  virtual bool RunBare(absl::string_view args, std::string* out,
                       std::string* bare, TaskFailure* failure) noexcept {
    (void)bare;
    return Run(args, out, failure);
  }

  // ChunkRunner::remote_name()
  //
  // The registered name a worker that was not forked from the pool looks
  // the function up by (spawn and forkserver start methods); nullptr for a
  // runner that only forked workers can run.
  virtual const char* remote_name() const { return nullptr; }
};

// The pool's runners, by index. Not thread-safe: the core guards it.
class FunctionTable {
 public:
  // FunctionTable::Add()
  //
  // Appends `runner` and returns its index. When `key` is not {nullptr, 0}
  // (a plain function: the runner type and the function's address), an equal
  // key returns the earlier index instead, so repeated `Map(Square, ...)`
  // does not grow the table.
  uint32_t Add(std::shared_ptr<ChunkRunner> runner,
               std::pair<const void*, uintptr_t> key = {nullptr, 0});

  // FunctionTable::Find()
  //
  // The index of a keyed entry, if any.
  std::optional<uint32_t> Find(std::pair<const void*, uintptr_t> key) const {
    if (key.first == nullptr && key.second == 0) return std::nullopt;
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return std::nullopt;
    return it->second;
  }

  ChunkRunner* Get(uint32_t index) const {
    return index < runners_.size() ? runners_[index].get() : nullptr;
  }
  uint32_t size() const { return static_cast<uint32_t>(runners_.size()); }

 private:
  std::vector<std::shared_ptr<ChunkRunner>> runners_;
  std::map<std::pair<const void*, uintptr_t>, uint32_t> by_key_;
};

// FailureToStatus()
//
// The status a caller sees for a failed item: the worker's code (kUnknown
// for an exception) and "task <index> failed in worker pid <pid>: <type>:
// <what>", with payloads `mp.index`, `mp.pid`, `mp.exception_type`.
absl::Status FailureToStatus(const TaskFailure& failure, int64_t base_index);

// DecodeFailureStatus()
//
// `FailureToStatus()` of encoded failure bytes; corrupt bytes give kDataLoss.
absl::Status DecodeFailureStatus(absl::string_view bytes, int64_t base_index);

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_RUNNER_H_
