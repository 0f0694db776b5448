#include "pool/internal/uninitialized_string.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace mp {
namespace pool_internal {
namespace {

TEST(SetLengthUninitializedTest, KeepsTheBytesWrittenIntoReservedMemory) {
  ASSERT_TRUE(kSetLengthKeepsBytes) << "the build lost C++23's "
                                       "resize_and_overwrite";
  std::string s = "ab";
  s.reserve(1 << 20);
  const char* before = s.data();
  // Another writer fills the reserved memory past the length.
  std::memset(s.data() + 2, 'x', (1 << 20) - 2);
  SetLengthUninitialized(&s, 1 << 20);
  EXPECT_EQ(s.data(), before);  // no reallocation
  ASSERT_EQ(s.size(), size_t{1} << 20);
  EXPECT_EQ(s.substr(0, 3), "abx");
  EXPECT_EQ(s.find_first_not_of('x', 2), std::string::npos);
  EXPECT_EQ(s.c_str()[s.size()], '\0');  // still terminated
}

TEST(SetLengthUninitializedTest, ShrinksAndGrowsPastTheCapacity) {
  std::string s(100, 'y');
  SetLengthUninitialized(&s, 10);
  EXPECT_EQ(s, std::string(10, 'y'));
  SetLengthUninitialized(&s, 0);
  EXPECT_TRUE(s.empty());
  SetLengthUninitialized(&s, 5000);  // reallocates
  EXPECT_EQ(s.size(), 5000u);
  EXPECT_GE(s.capacity(), 5000u);
}

}  // namespace
}  // namespace pool_internal
}  // namespace mp
