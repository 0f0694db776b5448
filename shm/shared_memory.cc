#include "shm/shared_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "process/fd.h"
#include "shm/internal/tracker.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace mp {
namespace {

constexpr size_t kMaxNameLength = 255;  // NAME_MAX, with the '/' excluded

absl::StatusOr<std::string> NormalizeName(absl::string_view name) {
  absl::string_view n = name;
  if (absl::StartsWith(n, "/")) n.remove_prefix(1);
  if (n.empty()) {
    return absl::InvalidArgumentError("shared memory name is empty");
  }
  if (n.size() > kMaxNameLength - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("shared memory name longer than 254: '", n, "'"));
  }
  if (absl::StrContains(n, "/") || absl::StrContains(n, std::string(1, '\0')) ||
      n == "." || n == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("shared memory name may not contain '/': '", n, "'"));
  }
  return std::string(n);
}

size_t PageSize() {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

bool ShmemHugePagesAllowed() {
  std::string all;
  UniqueFd fd(::open("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
                     O_RDONLY | O_CLOEXEC));
  char buf[256];
  absl::StatusOr<size_t> n;
  while (fd.valid() && (n = ReadSome(fd.get(), buf, sizeof(buf))).ok() && *n > 0) {
    all.append(buf, *n);
  }
  return !all.empty() && !absl::StrContains(all, "[never]") &&
         !absl::StrContains(all, "[deny]");
}

}  // namespace

namespace {
std::string* g_name_prefix = nullptr;  // nullptr: "psm_"
}  // namespace

void shm_internal::SetNamePrefixForTesting(absl::string_view prefix) {
  delete g_name_prefix;
  g_name_prefix = new std::string(prefix);
}

std::string RandomSharedMemoryName() {
  uint32_t r = 0;
  if (::getrandom(&r, sizeof(r), 0) != sizeof(r)) {
    // getrandom cannot fail for 4 bytes once the pool is ready; fall back on
    // time and pid all the same.
    r = static_cast<uint32_t>(::getpid()) * 2654435761u ^
        static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&r));
  }
  return absl::StrFormat("%s%08x",
                         g_name_prefix != nullptr ? *g_name_prefix : "psm_", r);
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : name_(std::move(other.name_)),
      size_(std::exchange(other.size_, 0)),
      map_size_(std::exchange(other.map_size_, 0)),
      addr_(std::exchange(other.addr_, nullptr)),
      owner_pid_(std::exchange(other.owner_pid_, 0)),
      huge_pages_(std::exchange(other.huge_pages_, false)) {
  other.name_.clear();
}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    Reset();
    name_ = std::move(other.name_);
    other.name_.clear();
    size_ = std::exchange(other.size_, 0);
    map_size_ = std::exchange(other.map_size_, 0);
    addr_ = std::exchange(other.addr_, nullptr);
    owner_pid_ = std::exchange(other.owner_pid_, 0);
    huge_pages_ = std::exchange(other.huge_pages_, false);
  }
  return *this;
}

SharedMemory::~SharedMemory() { Reset(); }

void SharedMemory::Reset() noexcept {
  if (addr_ != nullptr) ::munmap(addr_, map_size_);
  addr_ = nullptr;
  if (owner()) {
    const std::string path = "/" + name_;
    ::shm_unlink(path.c_str());
    shm_internal::UntrackSegment(name_);
  }
  owner_pid_ = 0;
}

bool SharedMemory::owner() const {
  return owner_pid_ != 0 && owner_pid_ == ::getpid();
}

absl::StatusOr<SharedMemory> SharedMemory::Create(size_t size,
                                                  absl::string_view name,
                                                  const Options& options) {
  if (size == 0) {
    return absl::InvalidArgumentError(
        "shared memory size must be a positive number");
  }
  std::string n;
  UniqueFd fd;
  if (name.empty()) {
    for (int attempt = 0; attempt < 100 && !fd.valid(); ++attempt) {
      n = RandomSharedMemoryName();
      const std::string path = "/" + n;
      fd.reset(::shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                          0600));
      if (!fd.valid() && errno != EEXIST) {
        return absl::ErrnoToStatus(errno, absl::StrCat("shm_open ", path));
      }
    }
    if (!fd.valid()) {
      return absl::AlreadyExistsError("no free shared memory name found");
    }
  } else {
    absl::StatusOr<std::string> normalized = NormalizeName(name);
    if (!normalized.ok()) return normalized.status();
    n = *std::move(normalized);
    const std::string path = "/" + n;
    fd.reset(
        ::shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) {
      if (errno == EEXIST) {
        return absl::AlreadyExistsError(
            absl::StrCat("shared memory '", n, "' already exists"));
      }
      return absl::ErrnoToStatus(errno, absl::StrCat("shm_open ", path));
    }
  }
  SharedMemory shm;
  shm.name_ = n;
  shm.owner_pid_ = ::getpid();  // from here on, failure unlinks
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return absl::ErrnoToStatus(errno, "ftruncate shared memory");
  }
  shm.size_ = size;
  shm.map_size_ = (size + PageSize() - 1) / PageSize() * PageSize();
  void* addr = ::mmap(nullptr, shm.map_size_, PROT_READ | PROT_WRITE,
                      MAP_SHARED, fd.get(), 0);
  if (addr == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap shared memory");
  shm.addr_ = addr;
  if (options.huge_pages) {
    shm.huge_pages_ = ::madvise(addr, shm.map_size_, MADV_HUGEPAGE) == 0 &&
                      ShmemHugePagesAllowed();
  }
  if (options.populate) {
    if (::madvise(addr, shm.map_size_, MADV_POPULATE_WRITE) != 0) {
      if (errno != EINVAL) {
        return absl::ErrnoToStatus(errno, "madvise(MADV_POPULATE_WRITE)");
      }
      // Before Linux 5.14: touch each page (the bytes are zero already).
      volatile char* p = static_cast<char*>(addr);
      for (size_t off = 0; off < shm.map_size_; off += PageSize()) p[off] = 0;
    }
  }
  if (options.track) {
    absl::Status s = shm_internal::TrackSegment(n);
    if (!s.ok()) return s;
  }
  return shm;
}

absl::StatusOr<SharedMemory> SharedMemory::Attach(absl::string_view name) {
  absl::StatusOr<std::string> n = NormalizeName(name);
  if (!n.ok()) return n.status();
  const std::string path = "/" + *n;
  UniqueFd fd(::shm_open(path.c_str(), O_RDWR | O_CLOEXEC, 0));
  if (!fd.valid()) {
    if (errno == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("no shared memory named '", *n, "'"));
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("shm_open ", path));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return absl::ErrnoToStatus(errno, "fstat");
  if (st.st_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("shared memory '", *n, "' is empty"));
  }
  SharedMemory shm;
  shm.name_ = *n;
  shm.size_ = static_cast<size_t>(st.st_size);
  shm.map_size_ = (shm.size_ + PageSize() - 1) / PageSize() * PageSize();
  void* addr = ::mmap(nullptr, shm.map_size_, PROT_READ | PROT_WRITE,
                      MAP_SHARED, fd.get(), 0);
  if (addr == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap shared memory");
  shm.addr_ = addr;
  return shm;
}

absl::StatusOr<SharedMemory> SharedMemory::Open(absl::string_view name,
                                                bool create, size_t size) {
  if (create) return Create(size, name);
  return Attach(name);
}

absl::Status SharedMemory::Close() {
  if (addr_ != nullptr && ::munmap(addr_, map_size_) != 0) {
    return absl::ErrnoToStatus(errno, "munmap");
  }
  addr_ = nullptr;
  return absl::OkStatus();
}

absl::Status SharedMemory::Unlink() {
  if (name_.empty()) {
    return absl::FailedPreconditionError("SharedMemory has no segment");
  }
  const std::string path = "/" + name_;
  const bool was_owner = owner();
  owner_pid_ = 0;
  // Untrack first: once the name is gone another process may reuse it.
  shm_internal::UntrackSegment(name_);
  if (::shm_unlink(path.c_str()) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("shared memory '", name_, "' was already unlinked"));
    }
    if (was_owner) owner_pid_ = ::getpid();
    return absl::ErrnoToStatus(errno, absl::StrCat("shm_unlink ", path));
  }
  return absl::OkStatus();
}

void SharedMemory::Disown() {
  if (owner()) shm_internal::UntrackSegment(name_);
  owner_pid_ = 0;
}

}  // namespace mp
