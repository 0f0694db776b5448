// -----------------------------------------------------------------------------
// File: shm/internal/block.h
// -----------------------------------------------------------------------------
//
// The segment layout shared by `mp::Value`, `mp::Array`, `mp::RawValue` and
// `mp::RawArray`: a header (magic, element type and count, whether the lock
// is used), an `RLock`, then the elements, 64-byte aligned.
//
//   absl::StatusOr<shm_internal::Block> b = shm_internal::Block::Create(
//       sizeof(int), alignof(int), TypeId<int>(), 10, /*locked=*/true);
//   int* data = static_cast<int*>(b->data());

#ifndef MP_SHM_INTERNAL_BLOCK_H_
#define MP_SHM_INTERNAL_BLOCK_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "shm/shared_memory.h"
#include "sync/rlock.h"

namespace mp {
namespace shm_internal {

class Block {
 public:
  Block() = default;

  // Create(): a new segment for `count` elements (zero-filled).
  // Errors: `kInvalidArgument` for alignment above 64 or a size overflow;
  // those of SharedMemory::Create().
  static absl::StatusOr<Block> Create(size_t elem_size, size_t elem_align,
                                      uint64_t type_id, size_t count,
                                      bool locked);

  // Attach(): maps `name` and checks it holds elements of this type.
  // Errors: `kNotFound`; `kInvalidArgument` when the segment is not a block
  // of this element type (or is truncated); `kUnavailable` while its creator
  // is still initializing it.
  static absl::StatusOr<Block> Attach(absl::string_view name, size_t elem_size,
                                      uint64_t type_id);

  // Marks the contents initialized (after the creator filled them).
  void Publish();

  void* data() const;
  size_t count() const;
  // The lock, or nullptr for a raw (unsynchronized) block.
  RLock* lock() const;
  const std::string& name() const { return memory_.name(); }
  SharedMemory& memory() { return memory_; }

 private:
  explicit Block(SharedMemory memory) : memory_(std::move(memory)) {}
  SharedMemory memory_;
};

}  // namespace shm_internal
}  // namespace mp

#endif  // MP_SHM_INTERNAL_BLOCK_H_
