// Compiled as C++23 (see BUILD): only the standard library is included here,
// whose std::string has the same layout in every language mode.
#include "pool/internal/uninitialized_string.h"

namespace mp {
namespace pool_internal {

#if defined(__cpp_lib_string_resize_and_overwrite)
const bool kSetLengthKeepsBytes = true;

void SetLengthUninitialized(std::string* s, size_t n) {
  s->resize_and_overwrite(n, [](char*, size_t len) { return len; });
}
#else
const bool kSetLengthKeepsBytes = false;

void SetLengthUninitialized(std::string* s, size_t n) { s->resize(n); }
#endif

}  // namespace pool_internal
}  // namespace mp
