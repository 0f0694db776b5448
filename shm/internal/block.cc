#include "shm/internal/block.h"

#include <atomic>
#include <new>

#include "absl/strings/str_cat.h"

namespace mp {
namespace shm_internal {
namespace {

constexpr uint64_t kBlockMagic = 0x6b636f6c42746d70ull;  // "pmtBlock"

struct alignas(64) Header {
  uint64_t magic;
  uint64_t type_id;
  uint64_t elem_size;
  uint64_t count;
  uint32_t locked;
  std::atomic<uint32_t> ready;
};

struct alignas(64) LockArea {
  RLock lock;
};

constexpr size_t kDataOffset = sizeof(Header) + sizeof(LockArea);
static_assert(kDataOffset % 64 == 0, "");

Header* HeaderOf(const SharedMemory& m) {
  return reinterpret_cast<Header*>(m.data());
}

}  // namespace

absl::StatusOr<Block> Block::Create(size_t elem_size, size_t elem_align,
                                    uint64_t type_id, size_t count,
                                    bool locked) {
  if (elem_align > 64) {
    return absl::InvalidArgumentError("element alignment above 64 bytes");
  }
  if (elem_size != 0 && count > (SIZE_MAX - kDataOffset) / elem_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("array of ", count, " elements is too large"));
  }
  absl::StatusOr<SharedMemory> m =
      SharedMemory::Create(kDataOffset + elem_size * count);
  if (!m.ok()) return m.status();
  Header* h = new (m->data()) Header();
  h->magic = kBlockMagic;
  h->type_id = type_id;
  h->elem_size = elem_size;
  h->count = count;
  h->locked = locked ? 1 : 0;
  new (m->data() + sizeof(Header)) LockArea();
  return Block(*std::move(m));
}

void Block::Publish() {
  HeaderOf(memory_)->ready.store(1, std::memory_order_release);
}

absl::StatusOr<Block> Block::Attach(absl::string_view name, size_t elem_size,
                                    uint64_t type_id) {
  absl::StatusOr<SharedMemory> m = SharedMemory::Attach(name);
  if (!m.ok()) return m.status();
  const Header* h = HeaderOf(*m);
  if (m->size() < kDataOffset || h->magic != kBlockMagic) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shared memory '", m->name(), "' does not hold a Value or Array"));
  }
  if (h->type_id != type_id || h->elem_size != elem_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shared memory '", m->name(), "' holds elements of another type"));
  }
  if (h->count > (m->size() - kDataOffset) / (elem_size ? elem_size : 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shared memory '", m->name(), "' is truncated"));
  }
  if (h->ready.load(std::memory_order_acquire) != 1) {
    return absl::UnavailableError(
        absl::StrCat("'", m->name(), "' is not initialized yet"));
  }
  return Block(*std::move(m));
}

void* Block::data() const { return memory_.data() + kDataOffset; }

size_t Block::count() const { return HeaderOf(memory_)->count; }

RLock* Block::lock() const {
  if (!HeaderOf(memory_)->locked) return nullptr;
  return &reinterpret_cast<LockArea*>(memory_.data() + sizeof(Header))->lock;
}

}  // namespace shm_internal
}  // namespace mp
