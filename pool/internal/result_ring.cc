#include "pool/internal/result_ring.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mp {
namespace pool_internal {
namespace {

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

}  // namespace

void RingRecord::EncodeTo(char* out) const {
  std::memcpy(out, &offset, 8);
  std::memcpy(out + 8, &size, 8);
  std::memcpy(out + 16, &end, 8);
}

RingRecord RingRecord::DecodeFrom(const char* in) {
  RingRecord r;
  std::memcpy(&r.offset, in, 8);
  std::memcpy(&r.size, in + 8, 8);
  std::memcpy(&r.end, in + 16, 8);
  return r;
}

ResultRing::ResultRing(UniqueFd fd, char* mapping, size_t capacity)
    : fd_(std::move(fd)), base_(mapping), capacity_(capacity) {}

ResultRing::ResultRing(ResultRing&& other) noexcept { *this = std::move(other); }

ResultRing& ResultRing::operator=(ResultRing&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(base_, PageSize() + capacity_);
    fd_ = std::move(other.fd_);
    base_ = std::exchange(other.base_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
    head_ = std::exchange(other.head_, 0);
    consumed_ = std::exchange(other.consumed_, 0);
  }
  return *this;
}

ResultRing::~ResultRing() {
  if (base_ != nullptr) munmap(base_, PageSize() + capacity_);
}

std::atomic<uint64_t>* ResultRing::released() const {
  return reinterpret_cast<std::atomic<uint64_t>*>(base_);
}

absl::StatusOr<ResultRing> ResultRing::Create(size_t capacity) {
  const size_t page = PageSize();
  capacity = (capacity + page - 1) / page * page;
  if (capacity == 0) return absl::InvalidArgumentError("ResultRing: capacity 0");
  UniqueFd fd(memfd_create("mp-pool-results", MFD_CLOEXEC));
  if (!fd) return absl::ErrnoToStatus(errno, "memfd_create");
  if (ftruncate(fd.get(), static_cast<off_t>(page + capacity)) != 0) {
    return absl::ErrnoToStatus(errno, "ftruncate");
  }
  void* m = mmap(nullptr, page + capacity, PROT_READ | PROT_WRITE, MAP_SHARED,
                 fd.get(), 0);
  if (m == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap");
  new (m) std::atomic<uint64_t>(0);
  return ResultRing(std::move(fd), static_cast<char*>(m), capacity);
}

absl::StatusOr<ResultRing> ResultRing::Map(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return absl::ErrnoToStatus(errno, "fstat");
  const size_t page = PageSize();
  const size_t size = static_cast<size_t>(st.st_size);
  if (!S_ISREG(st.st_mode) || size <= page || size % page != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ResultRing: fd ", fd, " (", size,
                     " bytes) is not a result ring"));
  }
  void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap");
  return ResultRing(UniqueFd(), static_cast<char*>(m), size - page);
}

bool ResultRing::Put(absl::string_view data, RingRecord* record) {
  if (base_ == nullptr || data.empty() || data.size() > capacity_) return false;
  const uint64_t free =
      capacity_ - (head_ - released()->load(std::memory_order_acquire));
  uint64_t at = head_ % capacity_;
  uint64_t skip = 0;
  if (at + data.size() > capacity_) {  // does not fit before the end: wrap
    skip = capacity_ - at;
    at = 0;
  }
  if (skip + data.size() > free) return false;
  std::memcpy(base_ + PageSize() + at, data.data(), data.size());
  head_ += skip + data.size();
  record->offset = at;
  record->size = data.size();
  record->end = head_;
  return true;
}

absl::StatusOr<absl::string_view> ResultRing::Get(
    const RingRecord& r) const {
  // The record must start at or after what was released, end within one
  // ring's length of it, and lie where its end position says.
  const bool ok = base_ != nullptr && r.size > 0 && r.size <= capacity_ &&
                  r.offset <= capacity_ - r.size && r.end >= consumed_ + r.size &&
                  r.end - consumed_ <= capacity_ &&
                  (r.end - r.size) % capacity_ == r.offset;
  if (!ok) {
    return absl::DataLossError(absl::StrCat(
        "result record {offset ", r.offset, ", size ", r.size, ", end ", r.end,
        "} does not fit a ring of ", capacity_, " bytes released up to ",
        consumed_));
  }
  return absl::string_view(base_ + PageSize() + r.offset, r.size);
}

void ResultRing::Release(const RingRecord& r) {
  consumed_ = r.end;
  released()->store(r.end, std::memory_order_release);
}

}  // namespace pool_internal
}  // namespace mp
