#include "pool/internal/fresh_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"

namespace mp {
namespace pool_internal {
namespace {

constexpr uintptr_t kMiB = uintptr_t{1} << 20;

// ---- AnonymousMappingIn -----------------------------------------------------

constexpr char kMaps[] =
    "55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                  "
    "        [heap]\n"
    "7f0000000000-7f0004000000 rw-p 00000000 00:00 0 \n"
    "7f0004000000-7f0004200000 ---p 00000000 00:00 0 \n"
    "7f0005000000-7f0005100000 rw-s 00000000 00:01 1234                "
    "       /dev/shm/psm_x (deleted)\n"
    "7f0006000000-7f0006100000 rw-p 00001000 08:01 42                  "
    "       /usr/lib/libfoo.so\n"
    "7f0007000000-7f0007100000 r--p 00000000 00:00 0 \n"
    "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                   "
    "       [stack]\n"
    "not a line\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0           "
    "       [vsyscall]\n";

TEST(AnonymousMappingInTest, FindsAnonymousPrivateWritableMappings) {
  std::optional<AddressRange> r =
      AnonymousMappingIn(kMaps, 0x7f0001234567);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->begin, 0x7f0000000000u);
  EXPECT_EQ(r->end, 0x7f0004000000u);
  // The first and the last byte belong to it; the end does not.
  EXPECT_TRUE(AnonymousMappingIn(kMaps, 0x7f0000000000).has_value());
  EXPECT_TRUE(AnonymousMappingIn(kMaps, 0x7f0003ffffff).has_value());
}

TEST(AnonymousMappingInTest, AcceptsTheBrkHeap) {
  std::optional<AddressRange> r = AnonymousMappingIn(kMaps, 0x55d0c0a00010);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->begin, 0x55d0c0a00000u);
  EXPECT_EQ(r->end, 0x55d0c0a21000u);
}

TEST(AnonymousMappingInTest, RejectsEveryOtherKindOfMapping) {
  EXPECT_FALSE(AnonymousMappingIn(kMaps, 0x7f0004000000).has_value());  // ---p
  EXPECT_FALSE(AnonymousMappingIn(kMaps, 0x7f0005000000).has_value());  // shm
  EXPECT_FALSE(AnonymousMappingIn(kMaps, 0x7f0006000000).has_value());  // file
  EXPECT_FALSE(AnonymousMappingIn(kMaps, 0x7f0007000000).has_value());  // r--p
  EXPECT_FALSE(AnonymousMappingIn(kMaps, 0x7ffc00000100).has_value());  // stack
  EXPECT_FALSE(AnonymousMappingIn(kMaps, 0x1000).has_value());  // unmapped
  EXPECT_FALSE(AnonymousMappingIn("", 0x7f0000000000).has_value());
  EXPECT_FALSE(AnonymousMappingIn("zz-yy rw-p 0 00:00 0\n", 0).has_value());
}

// ---- HugePageBlocks ---------------------------------------------------------

TEST(HugePageBlocksTest, WholeBlocksOverlappingTheBuffer) {
  AddressRange mapping{0x40000000, 0x44000000};  // 64 MiB, aligned
  // 1 MiB straddling a 2 MiB boundary: the two blocks around it.
  AddressRange r = HugePageBlocks(mapping, 0x40180000, 0x40280000);
  EXPECT_EQ(r, (AddressRange{0x40000000, 0x40400000}));
  // 1 MiB inside one block: that block.
  r = HugePageBlocks(mapping, 0x40210000, 0x40310000);
  EXPECT_EQ(r, (AddressRange{0x40200000, 0x40400000}));
}

TEST(HugePageBlocksTest, ClippedToTheMapping) {
  // The mapping starts and ends mid-block: only blocks wholly inside it.
  AddressRange mapping{0x40100000, 0x40700000};
  AddressRange r = HugePageBlocks(mapping, 0x40100010, 0x40600000);
  EXPECT_EQ(r, (AddressRange{0x40200000, 0x40600000}));
  // A buffer whose blocks all cross the mapping's edges gets none.
  r = HugePageBlocks(mapping, 0x40100010, 0x40180000);
  EXPECT_EQ(r.begin, r.end);
  // A mapping smaller than one block.
  r = HugePageBlocks(AddressRange{0x40000000, 0x40100000 + 0x1000},
                     0x40000000, 0x40100000);
  EXPECT_EQ(r.begin, r.end);
  // An empty buffer.
  r = HugePageBlocks(AddressRange{0x40000000, 0x44000000}, 0x40000000,
                     0x40000000);
  EXPECT_EQ(r.begin, r.end);
}

// ---- PrepareForWrite on real mappings ---------------------------------------

bool HugePagesAvailable() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s;
  std::getline(f, s);
  return s.find("[always]") != std::string::npos ||
         s.find("[madvise]") != std::string::npos;
}

// The VmFlags of every mapping overlapping [begin, end), from
// /proc/self/smaps, as (mapping begin, flags).
std::vector<std::pair<uintptr_t, std::string>> FlagsOfMappings(uintptr_t begin,
                                                                uintptr_t end) {
  std::ifstream f("/proc/self/smaps");
  std::vector<std::pair<uintptr_t, std::string>> out;
  std::string line;
  bool in = false;
  uintptr_t start = 0;
  while (std::getline(f, line)) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    std::pair<absl::string_view, absl::string_view> be =
        absl::StrSplit(parts[0], absl::MaxSplits('-', 1));
    uint64_t lo = 0, hi = 0;
    if (!be.second.empty() && absl::SimpleHexAtoi(be.first, &lo) &&
        absl::SimpleHexAtoi(be.second, &hi)) {
      in = lo < end && hi > begin;
      start = static_cast<uintptr_t>(lo);
      continue;
    }
    if (in && absl::StartsWith(line, "VmFlags:")) {
      out.emplace_back(start, line);
    }
  }
  return out;
}

bool HasHugeFlag(const std::string& vm_flags) {
  return vm_flags.find(" hg") != std::string::npos;
}

// A private anonymous mapping of `size` bytes at a 2 MiB-aligned address.
class AlignedMapping {
 public:
  explicit AlignedMapping(size_t size) : size_(size) {
    raw_size_ = size + 2 * kMiB;
    raw_ = static_cast<char*>(mmap(nullptr, raw_size_, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (raw_ == MAP_FAILED) {
      raw_ = nullptr;
      return;
    }
    base_ = reinterpret_cast<char*>(
        (reinterpret_cast<uintptr_t>(raw_) + 2 * kMiB - 1) & ~(2 * kMiB - 1));
    // Our own mapping only: unmap the slack on both sides.
    size_t head = static_cast<size_t>(base_ - raw_);
    if (head > 0) munmap(raw_, head);
    size_t tail = raw_size_ - head - size;
    if (tail > 0) munmap(base_ + size, tail);
  }
  ~AlignedMapping() {
    if (base_ != nullptr) munmap(base_, size_);
  }
  char* base() const { return base_; }

 private:
  size_t size_ = 0;
  size_t raw_size_ = 0;
  char* raw_ = nullptr;
  char* base_ = nullptr;
};

// Whether every whole page of the range is resident (the ones
// PrepareForWrite faults in; partial pages at the ends are malloc's too).
bool AllResident(const char* data, size_t len) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t at = reinterpret_cast<uintptr_t>(data);
  const uintptr_t begin = (at + page - 1) / page * page;
  const uintptr_t end = (at + len) / page * page;
  if (end <= begin) return true;
  std::vector<unsigned char> v((end - begin) / page);
  if (mincore(reinterpret_cast<void*>(begin), end - begin, v.data()) != 0) {
    return false;
  }
  for (unsigned char c : v) {
    if ((c & 1) == 0) return false;
  }
  return true;
}

std::string OwnMapsText() {
  std::ifstream f("/proc/self/maps");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(OwnAnonymousMappingTest, AgreesWithTheTextOfProcSelfMaps) {
  AlignedMapping m(4 * kMiB);
  ASSERT_NE(m.base(), nullptr);
  const uintptr_t base = reinterpret_cast<uintptr_t>(m.base());
  ASSERT_EQ(mprotect(m.base() + 3 * kMiB, kMiB, PROT_READ), 0);
  std::string text = OwnMapsText();
  std::optional<AddressRange> from_text =
      AnonymousMappingIn(text, base + 5000);
  std::optional<AddressRange> direct = OwnAnonymousMapping(base + 5000);
  ASSERT_TRUE(from_text.has_value());
  ASSERT_TRUE(direct.has_value());
  EXPECT_EQ(*from_text, *direct);
  EXPECT_EQ(direct->end, base + 3 * kMiB);  // the read-only tail is not it
  EXPECT_LE(direct->begin, base);
  // The read-only part, a heap string, code and an unmapped address.
  EXPECT_FALSE(OwnAnonymousMapping(base + 3 * kMiB + 10).has_value());
  EXPECT_FALSE(AnonymousMappingIn(text, base + 3 * kMiB + 10).has_value());
  std::string big(4 * kMiB, 'x');
  EXPECT_TRUE(OwnAnonymousMapping(reinterpret_cast<uintptr_t>(big.data()))
                  .has_value());
  EXPECT_FALSE(
      OwnAnonymousMapping(reinterpret_cast<uintptr_t>(&OwnMapsText))
          .has_value());
  void* gone = mmap(nullptr, 4096, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(gone, MAP_FAILED);
  ASSERT_EQ(munmap(gone, 4096), 0);
  EXPECT_FALSE(
      OwnAnonymousMapping(reinterpret_cast<uintptr_t>(gone)).has_value());
}

TEST(PrepareForWriteTest, FaultsInAFreshBufferAndKeepsItZero) {
  AlignedMapping m(8 * kMiB);
  ASSERT_NE(m.base(), nullptr);
  char* buf = m.base() + kMiB + 4096;
  const size_t len = 3 * kMiB;
  ASSERT_FALSE(IsResident(buf, len));
  PrepareForWrite(buf, len);
  EXPECT_TRUE(IsResident(buf, len));
  EXPECT_TRUE(AllResident(buf, len));
  for (size_t i = 0; i < len; i += 4096) ASSERT_EQ(buf[i], 0) << i;
}

TEST(PrepareForWriteTest, AsksForHugePagesOnlyInsideTheBuffersMapping) {
  if (!HugePagesAvailable()) GTEST_SKIP() << "transparent huge pages off";
  // One 12 MiB region, its first 5 MiB made read-only: two mappings, the
  // boundary in the middle of the block [4 MiB, 6 MiB).
  AlignedMapping m(12 * kMiB);
  ASSERT_NE(m.base(), nullptr);
  ASSERT_EQ(mprotect(m.base(), 5 * kMiB, PROT_READ), 0);
  const uintptr_t base = reinterpret_cast<uintptr_t>(m.base());

  // 2 MiB from just past the boundary: blocks [4, 6) and [6, 8) MiB overlap
  // it, and only [6, 8) lies inside its mapping.
  char* buf = m.base() + 5 * kMiB + 4096;
  PrepareForWrite(buf, 2 * kMiB);
  EXPECT_TRUE(AllResident(buf, 2 * kMiB));

  bool saw_huge = false;
  for (const auto& [start, flags] :
       FlagsOfMappings(base, base + 12 * kMiB)) {
    const bool huge = HasHugeFlag(flags);
    if (start == base + 6 * kMiB) {
      EXPECT_TRUE(huge) << flags;
      saw_huge = true;
    } else {
      EXPECT_FALSE(huge) << "mapping at +" << (start - base) / kMiB
                         << " MiB: " << flags;
    }
  }
  EXPECT_TRUE(saw_huge);
}

TEST(PrepareForWriteTest, SmallBuffersAreOnlyPopulated) {
  if (!HugePagesAvailable()) GTEST_SKIP() << "transparent huge pages off";
  AlignedMapping m(4 * kMiB);
  ASSERT_NE(m.base(), nullptr);
  const uintptr_t base = reinterpret_cast<uintptr_t>(m.base());
  char* buf = m.base() + 4096;
  PrepareForWrite(buf, kHugePageMinBuffer - 8192);
  EXPECT_TRUE(AllResident(buf, kHugePageMinBuffer - 8192));
  for (const auto& [start, flags] : FlagsOfMappings(base, base + 4 * kMiB)) {
    EXPECT_FALSE(HasHugeFlag(flags)) << flags;
  }
}

TEST(PrepareForWriteTest, ResidentBytesKeepTheirValues) {
  AlignedMapping m(8 * kMiB);
  ASSERT_NE(m.base(), nullptr);
  // The buffer's first page is fresh, but a page in its middle and one in
  // the 2 MiB block after it hold data.
  char* buf = m.base() + 4096;
  const size_t len = 3 * kMiB;
  std::memset(m.base() + kMiB, 'a', 4096);
  std::memset(m.base() + 5 * kMiB, 'b', 4096);
  ASSERT_FALSE(IsResident(buf, len));
  PrepareForWrite(buf, len);
  EXPECT_TRUE(AllResident(buf, len));
  for (size_t i = 0; i < 4096; ++i) {
    ASSERT_EQ(m.base()[kMiB + i], 'a');
    ASSERT_EQ(m.base()[5 * kMiB + i], 'b');
  }
  EXPECT_EQ(buf[0], 0);
  EXPECT_EQ(buf[len - 1], 0);
}

TEST(PrepareForWriteTest, MallocMemoryIsFaultedInAndUsable) {
  testing::LeakCheck leaks("psm_fresh_memory_test");
  for (size_t len : {size_t{100}, size_t{64} << 10, size_t{1} << 20,
                     size_t{3} << 20, size_t{9} << 20}) {
    std::string s;
    s.reserve(len);
    PrepareForWrite(s.data(), len);
    EXPECT_TRUE(IsResident(s.data(), len)) << len;
    s.append(len, 'x');
    EXPECT_EQ(s.size(), len);
    EXPECT_EQ(s[len / 2], 'x');
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(IsResidentTest, EveryWholePageCounts) {
  AlignedMapping m(2 * kMiB);
  ASSERT_NE(m.base(), nullptr);
  EXPECT_TRUE(IsResident(m.base() + 10, 100));  // no whole page
  EXPECT_FALSE(IsResident(m.base(), 2 * kMiB));
  m.base()[0] = 1;  // the first page only: the rest may be fresh
  EXPECT_FALSE(IsResident(m.base(), 2 * kMiB));
  m.base()[2 * kMiB - 1] = 1;  // and the last: one in the middle is not
  EXPECT_FALSE(IsResident(m.base(), 2 * kMiB));
  std::memset(m.base(), 1, 2 * kMiB);
  EXPECT_TRUE(IsResident(m.base(), 2 * kMiB));
  // A partial page at either end is not looked at.
  ASSERT_EQ(madvise(m.base(), 4096, MADV_DONTNEED), 0);
  EXPECT_TRUE(IsResident(m.base() + 1, 2 * kMiB - 2 - 4096));
  EXPECT_FALSE(IsResident(m.base(), 2 * kMiB));
}

// ---- SpareBuffer ------------------------------------------------------------

TEST(SpareBufferTest, TakeGivesRoomFaultedInAndKeepsASpare) {
  SpareBuffer spare;
  std::string s = spare.Take(kMiB);
  EXPECT_TRUE(s.empty());
  EXPECT_GE(s.capacity(), kMiB);
  EXPECT_TRUE(AllResident(s.data(), kMiB));
  EXPECT_GE(spare.spare_capacity(), kMiB);
  s.append(kMiB, 'x');
  EXPECT_EQ(s[kMiB - 1], 'x');
}

TEST(SpareBufferTest, TheNextResultOfAboutThatSizeGetsTheSpare) {
  SpareBuffer spare;
  std::string a = spare.Take(kMiB);
  std::string b = spare.Take(kMiB - 1000);  // the spare fits: taken
  std::string c = spare.Take(kMiB);
  EXPECT_NE(a.data(), b.data());
  EXPECT_NE(b.data(), c.data());
  EXPECT_TRUE(AllResident(b.data(), kMiB - 1000));
  EXPECT_TRUE(AllResident(c.data(), kMiB));
  // Another size: the old spare goes, one of the new size is kept.
  std::string d = spare.Take(3 * kMiB);
  EXPECT_GE(d.capacity(), 3 * kMiB);
  EXPECT_GE(spare.spare_capacity(), 3 * kMiB);
  // A much smaller one does not take a spare it would waste.
  std::string e = spare.Take(kMiB + 5);
  EXPECT_LT(spare.spare_capacity(), 2 * kMiB);
}

TEST(SpareBufferTest, SmallAndHugeSizesKeepNoSpare) {
  SpareBuffer spare;
  std::string a = spare.Take(100 << 10);
  EXPECT_EQ(spare.spare_capacity(), std::string().capacity());
  std::string b = spare.Take(SpareBuffer::kMaxSpare + 1);
  EXPECT_GE(b.capacity(), SpareBuffer::kMaxSpare + 1);
  EXPECT_EQ(spare.spare_capacity(), std::string().capacity());
}

// What the spare is for: a thread (a glibc thread arena, like the pool's
// handler) makes 72 results of 1 MiB (more than one 64 MiB arena heap, as
// a 64 MiB Map's are), the caller frees them all, three times over; the
// only other allocations are made up front. With a spare taken after each
// result, the freed results' memory stays resident for the next round;
// without one (the strings made directly), glibc gives it back to the
// kernel when they are freed. (This pins down glibc's behaviour on this
// system: the second half shows that the first half tests something.)
int ResidentAfterFreeing(bool with_spare) {
  constexpr int kResults = 72;
  int resident = 0;
  std::thread t([&] {
    SpareBuffer spare;
    std::vector<std::string> results;
    std::vector<const char*> where;
    results.reserve(kResults);
    where.reserve(kResults);
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < kResults; ++i) {
        std::string s;
        if (with_spare) {
          s = spare.Take(kMiB);
        } else {
          s.reserve(kMiB);
        }
        s.append(kMiB, 'r');
        results.push_back(std::move(s));
      }
      where.clear();
      for (const std::string& r : results) where.push_back(r.data());
      results.clear();
    }
    for (const char* p : where) resident += IsResident(p, kMiB) ? 1 : 0;
  });
  t.join();
  return resident;
}

TEST(SpareBufferTest, FreedResultsStayForTheNextRound) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "pins down glibc malloc's behaviour; ASan has its own";
#endif
  const int with_spare = ResidentAfterFreeing(/*with_spare=*/true);
  const int without = ResidentAfterFreeing(/*with_spare=*/false);
  EXPECT_GE(with_spare, 64) << "without the spare: " << without;
  EXPECT_LE(without, 16) << "with the spare: " << with_spare;
}

}  // namespace
}  // namespace pool_internal
}  // namespace mp
