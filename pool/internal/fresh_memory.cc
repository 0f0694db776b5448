#include "pool/internal/fresh_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace mp {
namespace pool_internal {
namespace {

constexpr uintptr_t kHugePage = uintptr_t{2} << 20;

uintptr_t PageSize() {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  return page;
}

uintptr_t RoundDown(uintptr_t x, uintptr_t align) { return x & ~(align - 1); }
uintptr_t RoundUp(uintptr_t x, uintptr_t align) {
  return RoundDown(x + align - 1, align);
}

// The whole pages of [data, data + len); empty (begin >= end) if none.
AddressRange WholePages(const char* data, size_t len) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(data);
  return AddressRange{RoundUp(at, PageSize()), RoundDown(at + len, PageSize())};
}

// Linux 6.11's PROCMAP_QUERY ioctl on /proc/<pid>/maps (include/uapi/linux/
// fs.h), declared here because the system headers may predate it.
struct ProcmapQuery {
  uint64_t size;
  uint64_t query_flags;
  uint64_t query_addr;
  uint64_t vma_start;
  uint64_t vma_end;
  uint64_t vma_flags;
  uint64_t vma_page_size;
  uint64_t vma_offset;
  uint64_t inode;
  uint32_t dev_major;
  uint32_t dev_minor;
  uint32_t vma_name_size;
  uint32_t build_id_size;
  uint64_t vma_name_addr;
  uint64_t build_id_addr;
};
constexpr unsigned long kProcmapQuery =  // _IOWR('f', 17, struct ...)
    _IOWR('f', 17, ProcmapQuery);
constexpr uint64_t kVmaReadable = 0x01;
constexpr uint64_t kVmaWritable = 0x02;
constexpr uint64_t kVmaExecutable = 0x04;
constexpr uint64_t kVmaShared = 0x08;

enum class Query { kFound, kNotAnonymous, kUnsupported };

// The mapping holding `address` through PROCMAP_QUERY: one ioctl instead of
// reading and parsing every line. kUnsupported on kernels without it.
Query QueryMapping(int maps_fd, uintptr_t address, AddressRange* out) {
  char name[32];
  ProcmapQuery q;
  std::memset(&q, 0, sizeof q);
  q.size = sizeof q;
  q.query_addr = address;
  q.vma_name_size = sizeof name;
  q.vma_name_addr = reinterpret_cast<uintptr_t>(name);
  if (::ioctl(maps_fd, kProcmapQuery, &q) != 0) {
    // ENOENT: no mapping there; ENAMETOOLONG: a name longer than "[heap]".
    if (errno == ENOENT || errno == ENAMETOOLONG) return Query::kNotAnonymous;
    return Query::kUnsupported;
  }
  absl::string_view vma_name =
      q.vma_name_size > 0 ? absl::string_view(name, q.vma_name_size - 1)
                          : absl::string_view();
  bool anonymous =
      (q.vma_flags & (kVmaReadable | kVmaWritable | kVmaExecutable |
                      kVmaShared)) == (kVmaReadable | kVmaWritable) &&
      q.inode == 0 && q.dev_major == 0 && q.dev_minor == 0 &&
      q.vma_offset == 0 && (vma_name.empty() || vma_name == "[heap]");
  if (!anonymous) return Query::kNotAnonymous;
  out->begin = static_cast<uintptr_t>(q.vma_start);
  out->end = static_cast<uintptr_t>(q.vma_end);
  return Query::kFound;
}

bool ParseHex(absl::string_view s, uintptr_t* out) {
  uint64_t v = 0;
  if (!absl::SimpleHexAtoi(s, &v)) return false;
  *out = static_cast<uintptr_t>(v);
  return true;
}

}  // namespace

std::optional<AddressRange> AnonymousMappingIn(absl::string_view maps,
                                               uintptr_t address) {
  for (absl::string_view line : absl::StrSplit(maps, '\n')) {
    // "begin-end perms offset dev inode [name]"
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 5) continue;
    std::pair<absl::string_view, absl::string_view> be =
        absl::StrSplit(f[0], absl::MaxSplits('-', 1));
    AddressRange r;
    if (!ParseHex(be.first, &r.begin) || !ParseHex(be.second, &r.end)) {
      continue;
    }
    if (address < r.begin || address >= r.end) continue;
    bool anonymous = f[1] == "rw-p" && f[2].find_first_not_of('0') ==
                                           absl::string_view::npos &&
                     f[3] == "00:00" && f[4] == "0" &&
                     (f.size() == 5 || (f.size() == 6 && f[5] == "[heap]"));
    if (!anonymous) return std::nullopt;
    return r;
  }
  return std::nullopt;
}

std::optional<AddressRange> OwnAnonymousMapping(uintptr_t address) {
  int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  AddressRange r;
  Query q = QueryMapping(fd, address, &r);
  std::string text;
  if (q == Query::kUnsupported) {
    char buf[16384];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  switch (q) {
    case Query::kFound:
      return r;
    case Query::kNotAnonymous:
      return std::nullopt;
    case Query::kUnsupported:
      break;
  }
  return AnonymousMappingIn(text, address);
}

AddressRange HugePageBlocks(AddressRange mapping, uintptr_t begin,
                            uintptr_t end) {
  AddressRange r;
  if (begin >= end) return r;
  uintptr_t lo = RoundDown(begin, kHugePage);
  uintptr_t hi = RoundUp(end, kHugePage);
  if (lo < mapping.begin) lo = RoundUp(mapping.begin, kHugePage);
  if (hi > mapping.end) hi = RoundDown(mapping.end, kHugePage);
  if (lo >= hi) return r;
  r.begin = lo;
  r.end = hi;
  return r;
}

namespace {

// Whether every page of the page-aligned `pages` is resident, asked 1024
// pages at a time (a page-table walk: ~1 us per MiB). Every page, not just
// the first: a heap given back only at its top, or an allocator that fills
// the start of each block (ASan), leaves some resident.
bool PagesResident(AddressRange pages) {
  const uintptr_t page = PageSize();
  unsigned char vec[1024];
  for (uintptr_t at = pages.begin; at < pages.end;) {
    const size_t n = std::min<uintptr_t>((pages.end - at) / page, sizeof vec);
    if (::mincore(reinterpret_cast<void*>(at), n * page, vec) != 0) {
      return false;
    }
    for (size_t i = 0; i < n; ++i) {
      if ((vec[i] & 1) == 0) return false;
    }
    at += n * page;
  }
  return true;
}

}  // namespace

bool IsResident(const char* data, size_t len) {
  return PagesResident(WholePages(data, len));
}

void PrepareForWrite(char* data, size_t len) {
  // Memory malloc reused is resident already, and populating it again would
  // only walk its page tables.
  const AddressRange pages = WholePages(data, len);
  if (PagesResident(pages)) return;
  const uintptr_t at = reinterpret_cast<uintptr_t>(data);
  if (len >= kHugePageMinBuffer) {
    std::optional<AddressRange> mapping = OwnAnonymousMapping(at);
    if (mapping.has_value()) {
      AddressRange blocks = HugePageBlocks(*mapping, at, at + len);
      if (blocks.end > blocks.begin) {
        (void)::madvise(reinterpret_cast<void*>(blocks.begin),
                        blocks.end - blocks.begin, MADV_HUGEPAGE);
      }
    }
  }
#ifdef MADV_POPULATE_WRITE
  // Kernels before 5.14 (EINVAL): the pages fault in as they are written.
  (void)::madvise(reinterpret_cast<void*>(pages.begin),
                  pages.end - pages.begin, MADV_POPULATE_WRITE);
#endif
}

std::string SpareBuffer::Take(size_t n) {
  const bool keeps_spare = n >= kHugePageMinBuffer && n <= kMaxSpare;
  std::string s;
  if (keeps_spare) {
    if (spare_.capacity() >= n && spare_.capacity() - n <= n / 8 + 4096) {
      s.swap(spare_);
    } else {
      std::string().swap(spare_);  // freed first: its memory may serve `s`
    }
  }
  if (s.capacity() < n) s.reserve(n);
  PrepareForWrite(s.data(), n);
  // The next one, allocated after `s` (above it when both come from the top
  // of the heap); faulted in when it is used.
  if (keeps_spare) spare_.reserve(n);
  return s;
}

}  // namespace pool_internal
}  // namespace mp
