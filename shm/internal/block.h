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
#include <cstring>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "shm/internal/type_id.h"
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

// CreateBlockOf<T>(): `Block::Create()` for `count` T's; copies `count`
// T's from `init` in (unless `init` is nullptr: zero-filled), then publishes.
template <typename T>
absl::StatusOr<Block> CreateBlockOf(size_t count, const T* init, bool locked) {
  absl::StatusOr<Block> b =
      Block::Create(sizeof(T), alignof(T), TypeId<T>(), count, locked);
  if (!b.ok()) return b.status();
  if (init != nullptr && count > 0) {
    std::memcpy(b->data(), init, count * sizeof(T));
  }
  b->Publish();
  return b;
}

// AttachBlockOf<T>(): `Block::Attach()` for a block of T's.
template <typename T>
absl::StatusOr<Block> AttachBlockOf(absl::string_view name) {
  return Block::Attach(name, sizeof(T), TypeId<T>());
}

// Holds `lock` while alive; does nothing for nullptr (a raw block). A lock
// whose holder died (kDataLoss) is held all the same.
class LockIfAny {
 public:
  explicit LockIfAny(RLock* lock) : lock_(lock) {
    if (lock_ != nullptr) lock_->Acquire().IgnoreError();  // kDataLoss: held
  }
  ~LockIfAny() {
    if (lock_ != nullptr) lock_->Release().IgnoreError();
  }
  LockIfAny(const LockIfAny&) = delete;
  LockIfAny& operator=(const LockIfAny&) = delete;

 private:
  RLock* lock_;
};

}  // namespace shm_internal
}  // namespace mp

#endif  // MP_SHM_INTERNAL_BLOCK_H_
