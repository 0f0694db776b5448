// -----------------------------------------------------------------------------
// File: shm/internal/test_prefix.h
// -----------------------------------------------------------------------------
//
// Test-only: gives the segments a test process makes a name prefix of its
// own, so that its /dev/shm leak check ignores other tests' segments.
//
//   mp::testing::LeakCheck leaks(mp::shm_internal::TestPrefix());
//   ... create segments (their names start with the prefix) ...
//   EXPECT_TRUE(leaks.Verify().ok());

#ifndef MP_SHM_INTERNAL_TEST_PREFIX_H_
#define MP_SHM_INTERNAL_TEST_PREFIX_H_

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "shm/shared_memory.h"

namespace mp {
namespace shm_internal {

// TestPrefix()
//
// "psm_<pid>_". The first call also makes it this process's name prefix
// (`SetNamePrefixForTesting()`); later calls return the same string.
inline std::string TestPrefix() {
  static const std::string prefix = [] {
    std::string p = absl::StrCat("psm_", ::getpid(), "_");
    SetNamePrefixForTesting(p);
    return p;
  }();
  return prefix;
}

}  // namespace shm_internal
}  // namespace mp

#endif  // MP_SHM_INTERNAL_TEST_PREFIX_H_
