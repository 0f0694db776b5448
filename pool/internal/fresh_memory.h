// -----------------------------------------------------------------------------
// File: pool/internal/fresh_memory.h
// -----------------------------------------------------------------------------
//
// Preparing the memory a large result is about to be written into, and
// keeping that memory from going back to the kernel between calls
// (`SpareBuffer`, below).
//
// The pool copies each large result (a worker's ring record, or a big socket
// frame) into a new `std::string` that the caller keeps. When the caller frees
// many of them between calls (a `Map` of 64 MiB, say), glibc often gives that
// memory back to the kernel, and the next call's strings are fresh pages: one
// page fault and one zeroed 4 KiB page per 4 KiB, which on this project's
// virtual machines costs ~430 us per MiB, more than twice the whole transfer;
// in 2 MiB transparent huge pages the same memory costs ~80 us per MiB, and
// giving it back (glibc's MADV_DONTNEED on the freed heap) 3 us instead of 90.
//
//   std::string s;
//   s.reserve(n);
//   mp::pool_internal::PrepareForWrite(s.data(), n);  // before writing n bytes
//   s.append(bytes, n);
//
// `PrepareForWrite` does nothing when the memory is resident (malloc reused
// it). When it is not, it first lets the kernel back the buffer with
// transparent huge pages where it can, and then faults the whole buffer in
// with one `MADV_POPULATE_WRITE` call. Huge pages are only asked for whole
// 2 MiB blocks that lie inside the one anonymous private mapping holding the
// buffer (malloc's heap or its own mmap of the chunk, as the kernel's list of
// mappings shows it) and overlap the buffer; no other mapping is touched. A
// huge page is only used for a block with no page resident yet, so no byte
// changes value. What it costs: up to one extra 2 MiB block of resident
// memory on each side of the buffer, which the next large results usually
// fill, and the kernel's khugepaged may later merge a flagged block's small
// pages into a huge page (at most 2 MiB per block the pool flagged).
//
// All of it is advice: on a kernel without `MADV_POPULATE_WRITE` or with
// transparent huge pages off, the buffer is simply faulted in as it is
// written, as it would have been without this call.

#ifndef MP_POOL_INTERNAL_FRESH_MEMORY_H_
#define MP_POOL_INTERNAL_FRESH_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace mp {
namespace pool_internal {

// Buffers smaller than this are only populated, never given huge pages: a
// 2 MiB block for less than 1 MiB of result would mostly be waste.
inline constexpr size_t kHugePageMinBuffer = size_t{1} << 20;

// PrepareForWrite()
//
// Readies `len` bytes at `data`, about to be written, as described above.
// Never fails: every step is advice the kernel may decline.
void PrepareForWrite(char* data, size_t len);

// A buffer kept for the next large result: `Take(n)` returns an empty string
// with room for `n` bytes, faulted in (PrepareForWrite), and allocates
// another of the same size, the spare, which the next call of about that
// size takes. Why: the spare is allocated after each result, so it is the
// newest large block in the heap, and the memory of the results the caller
// has freed lies below it, where malloc keeps it for the next results,
// instead of at the top of the heap, where glibc gives it back to the kernel
// and every later result pays for fresh zeroed pages (measured: 64 results
// of 1 MiB per `Map` took 120-160 us per MiB when the memory was reused and
// 250-750 us when it was not, in ~40% of processes, depending on heap
// layout; with the spare, in every process). Holds one allocation of up to
// `kMaxSpare` bytes between calls (not faulted in until used, so resident
// only if malloc reused resident memory for it); sizes outside
// [kHugePageMinBuffer, kMaxSpare] keep no spare. Thread-compatible.
//
//   SpareBuffer spare;
//   std::string s = spare.Take(n);
//   s.append(bytes, n);
class SpareBuffer {
 public:
  static constexpr size_t kMaxSpare = size_t{8} << 20;

  std::string Take(size_t n);
  size_t spare_capacity() const { return spare_.capacity(); }

 private:
  std::string spare_;
};

// IsResident()
//
// Whether every whole page of [data, data + len) is in memory (mincore): for
// memory malloc hands out, whether it reused memory (resident) or got fresh
// pages from the kernel. True when the range holds no whole page.
bool IsResident(const char* data, size_t len);

// An address range [begin, end).
struct AddressRange {
  uintptr_t begin = 0;
  uintptr_t end = 0;
  bool operator==(const AddressRange& o) const {
    return begin == o.begin && end == o.end;
  }
};

// AnonymousMappingIn()
//
// The mapping that contains `address`, from the text of /proc/<pid>/maps
// (`maps`), if it is anonymous, private and readable and writable: "rw-p",
// offset 0, no device, no inode, no name or the name "[heap]". nullopt when
// no line contains `address` or that mapping is anything else (a file, a
// stack, shared memory).
std::optional<AddressRange> AnonymousMappingIn(absl::string_view maps,
                                               uintptr_t address);

// OwnAnonymousMapping()
//
// AnonymousMappingIn() for this process: one PROCMAP_QUERY ioctl on
// /proc/self/maps (Linux 6.11), or on older kernels its text.
std::optional<AddressRange> OwnAnonymousMapping(uintptr_t address);

// HugePageBlocks()
//
// The whole 2 MiB-aligned blocks that lie inside `mapping` and overlap
// [begin, end), as one range; an empty range (begin == end) when there are
// none.
AddressRange HugePageBlocks(AddressRange mapping, uintptr_t begin,
                            uintptr_t end);

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_FRESH_MEMORY_H_
