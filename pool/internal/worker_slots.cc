#include "pool/internal/worker_slots.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>

#include "absl/status/status.h"

namespace mp {
namespace pool_internal {
namespace {

constexpr int kWords = WorkerSlots::kSlotsPerPage / 64;
constexpr size_t kPageBytes =
    WorkerSlots::kSlotsPerPage * sizeof(std::atomic<uint64_t>);

// One page of slots. `used` is this process's own (private) record of the
// slots it handed out; a forked child inherits a copy, which it ignores
// (the page is not its own: see `owner`).
struct Page {
  std::atomic<std::atomic<uint64_t>*> base;
  std::atomic<pid_t> owner;  // the process that mapped `base`; 0 while set up
  std::atomic<uint64_t> used[kWords];
};

// Zero-initialized before any code runs (trivial atomics, static storage):
// usable from any constructor, and never destroyed.
Page g_pages[WorkerSlots::kMaxPages];

// The page at `i`, mapped if nobody has yet; nullptr (and `*error` set) when
// the mmap failed.
std::atomic<uint64_t>* PageAt(int i, pid_t me, absl::Status* error) {
  Page& p = g_pages[i];
  std::atomic<uint64_t>* base = p.base.load(std::memory_order_acquire);
  if (base != nullptr) return base;
  void* m = mmap(nullptr, kPageBytes, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    *error = absl::ErrnoToStatus(errno, "mmap of a page of worker slots");
    return nullptr;
  }
  auto* fresh = static_cast<std::atomic<uint64_t>*>(m);  // zero-filled
  if (!p.base.compare_exchange_strong(base, fresh, std::memory_order_acq_rel)) {
    munmap(m, kPageBytes);  // another thread mapped this entry first
    return base;
  }
  p.owner.store(me, std::memory_order_release);
  return fresh;
}

}  // namespace

absl::StatusOr<std::atomic<uint64_t>*> WorkerSlots::Take() {
  const pid_t me = ::getpid();
  for (int i = 0; i < kMaxPages; ++i) {
    absl::Status error;
    std::atomic<uint64_t>* base = PageAt(i, me, &error);
    if (base == nullptr) return error;
    Page& p = g_pages[i];
    // Not ours (a parent's page, or one another thread is still setting up).
    if (p.owner.load(std::memory_order_acquire) != me) continue;
    for (int w = 0; w < kWords; ++w) {
      uint64_t used = p.used[w].load(std::memory_order_relaxed);
      while (used != ~uint64_t{0}) {
        const int bit = __builtin_ctzll(~used);
        if (p.used[w].compare_exchange_weak(used, used | (uint64_t{1} << bit),
                                            std::memory_order_acq_rel)) {
          std::atomic<uint64_t>* slot = base + w * 64 + bit;
          slot->store(0, std::memory_order_relaxed);
          return slot;
        }
      }
    }
  }
  return absl::ResourceExhaustedError(
      "every worker slot is in use (too many workers alive at once)");
}

void WorkerSlots::Give(std::atomic<uint64_t>* slot) {
  if (slot == nullptr) return;
  const pid_t me = ::getpid();
  for (Page& p : g_pages) {
    std::atomic<uint64_t>* base = p.base.load(std::memory_order_acquire);
    if (base == nullptr || slot < base || slot >= base + kSlotsPerPage) continue;
    if (p.owner.load(std::memory_order_acquire) != me) return;
    const auto index = static_cast<size_t>(slot - base);
    p.used[index / 64].fetch_and(~(uint64_t{1} << (index % 64)),
                                 std::memory_order_acq_rel);
    return;
  }
}

int WorkerSlots::PagesMappedForTesting() {
  const pid_t me = ::getpid();
  int n = 0;
  for (Page& p : g_pages) {
    if (p.owner.load(std::memory_order_acquire) == me) ++n;
  }
  return n;
}

}  // namespace pool_internal
}  // namespace mp
