// -----------------------------------------------------------------------------
// File: shm/shared_memory.h
// -----------------------------------------------------------------------------
//
// `mp::SharedMemory` is a named POSIX shared memory segment mapped into this
// process (Python: `multiprocessing.shared_memory.SharedMemory`). Names are
// Python's: `psm_` plus random hex by default, without the leading '/', so a
// Python program can attach with `SharedMemory(name=...)` and see the same
// bytes, and the reverse.
//
//   absl::StatusOr<mp::SharedMemory> shm = mp::SharedMemory::Create(4096);
//   if (!shm.ok()) return shm.status();
//   std::memcpy(shm->data(), "hi", 2);
//   // another process, any start method:
//   absl::StatusOr<mp::SharedMemory> peer = mp::SharedMemory::Attach(name);
//
// Lifetime, without Python's traps:
//   * The creator owns the segment: its destructor (or `Unlink()`) removes
//     the name. Attaching never takes ownership and never unlinks.
//   * A per-process tracker (this program re-executed as `mp-shm-tracker`
//     when the first owned segment is created) removes the segments of a
//     creator that dies without unlinking them (SIGKILL, abort,
//     std::terminate). The creator holds no fd for it; it watches the creator
//     through a pidfd, prints nothing, and exits when the creator exits. See
//     shm/internal/tracker.h.
//   * A `fork()` child that inherits a `SharedMemory` object does not own the
//     segment: only the creating process unlinks.
//
// Segments are created with mode 0600. `size()` is the file size (Python's
// `size` on Linux); the mapping covers it (rounded up to a page by the kernel).

#ifndef MP_SHM_SHARED_MEMORY_H_
#define MP_SHM_SHARED_MEMORY_H_

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mp {

// Options of `SharedMemory::Create()`.
struct SharedMemoryOptions {
  // Pre-fault every page at creation (MADV_POPULATE_WRITE, or touching each
  // page where that is missing), so later writes take no page faults.
  bool populate = false;
  // Ask for transparent huge pages (madvise MADV_HUGEPAGE). Honoured only
  // when /sys/kernel/mm/transparent_hugepage/shmem_enabled allows it;
  // `huge_pages()` reports whether the advice was accepted.
  bool huge_pages = false;
  // Register the segment with the tracker, so it is removed even if this
  // process is killed. Turn off only for segments meant to outlive it.
  bool track = true;
};

class SharedMemory {
 public:
  using Options = SharedMemoryOptions;

  SharedMemory() = default;
  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;
  // Unmaps; the owner (in the creating process) also unlinks.
  ~SharedMemory();

  // SharedMemory::Create()
  //
  // Creates a new segment of `size` bytes (zero-filled) and maps it. An empty
  // `name` picks a fresh `psm_<hex>` name. A leading '/' in `name` is
  // accepted and dropped.
  //
  // Errors: `kInvalidArgument` for size 0 or a bad name (empty after the '/',
  // containing '/', longer than 255); `kAlreadyExists` when the name is taken;
  // the errno of shm_open/ftruncate/mmap otherwise.
  static absl::StatusOr<SharedMemory> Create(size_t size,
                                             absl::string_view name = "",
                                             const Options& options = {});

  // SharedMemory::Attach()
  //
  // Maps an existing segment; its size is the file's size. The result does
  // not own the segment.
  //
  // Errors: `kNotFound` when there is no such segment, `kInvalidArgument` for
  // a bad name or an empty segment; the errno of shm_open/mmap otherwise.
  static absl::StatusOr<SharedMemory> Attach(absl::string_view name);

  // SharedMemory::Open()
  //
  // Python's constructor `SharedMemory(name, create, size)`: `Create()` when
  // `create`, else `Attach()` (`size` ignored).
  static absl::StatusOr<SharedMemory> Open(absl::string_view name, bool create,
                                           size_t size = 0);

  // SharedMemory::Close()
  //
  // Unmaps this process's view (Python's `close()`). Does not unlink, even
  // for the owner; the owner's destructor still unlinks unless `Unlink()` or
  // `Disown()` ran. Idempotent.
  absl::Status Close();

  // SharedMemory::Unlink()
  //
  // Removes the name (Python's `unlink()`); mappings stay valid. Any process
  // may unlink. Errors: `kNotFound` when the name is already gone.
  absl::Status Unlink();

  // SharedMemory::Disown()
  //
  // Stops owning the segment: neither the destructor nor the tracker will
  // unlink it. For segments that must outlive this process.
  void Disown();

  const std::string& name() const { return name_; }
  size_t size() const { return size_; }
  char* data() const { return static_cast<char*>(addr_); }
  absl::Span<char> span() const { return absl::Span<char>(data(), size_); }
  bool mapped() const { return addr_ != nullptr; }
  // Whether this object will unlink the segment when destroyed.
  bool owner() const;
  bool huge_pages() const { return huge_pages_; }

 private:
  void Reset() noexcept;

  std::string name_;  // without the leading '/'
  size_t size_ = 0;
  size_t map_size_ = 0;
  void* addr_ = nullptr;
  pid_t owner_pid_ = 0;  // the creating process while it owns the segment
  bool huge_pages_ = false;
};

// RandomSharedMemoryName()
//
// A fresh name in Python's format: `psm_` and 8 hex digits.
std::string RandomSharedMemoryName();

namespace shm_internal {
// SetNamePrefixForTesting()
//
// Makes `RandomSharedMemoryName()` in this process use `prefix` instead of
// "psm_", so that a test's /dev/shm leak check sees only its own segments.
void SetNamePrefixForTesting(absl::string_view prefix);
}  // namespace shm_internal

}  // namespace mp

#endif  // MP_SHM_SHARED_MEMORY_H_
