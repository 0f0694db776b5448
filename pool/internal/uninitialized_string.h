// -----------------------------------------------------------------------------
// File: pool/internal/uninitialized_string.h
// -----------------------------------------------------------------------------
//
// Setting a string's length without writing its bytes, for a buffer that
// something else has filled or will fill (another process writing into the
// string's reserved memory, for instance).
//
//   std::string s;
//   s.reserve(n);
//   FillFromElsewhere(s.data(), n);          // writes n bytes at s.data()
//   mp::pool_internal::SetLengthUninitialized(&s, n);  // s.size() == n
//
// This is C++23's `std::string::resize_and_overwrite` with an operation that
// writes nothing; this one translation unit is compiled as C++23 for it.
// Where the standard library lacks it, the length is set with `resize`,
// which zero-fills: correct for callers that fill the bytes afterwards, and
// detectable with `kSetLengthKeepsBytes`.

#ifndef MP_POOL_INTERNAL_UNINITIALIZED_STRING_H_
#define MP_POOL_INTERNAL_UNINITIALIZED_STRING_H_

#include <cstddef>
#include <string>

namespace mp {
namespace pool_internal {

// Whether SetLengthUninitialized() keeps the bytes already in the reserved
// memory (true with a C++23 standard library).
extern const bool kSetLengthKeepsBytes;

// SetLengthUninitialized()
//
// Makes `s->size()` equal `n` (`n <= s->capacity()`, or the string
// reallocates and the bytes past the old length are unspecified), leaving
// the bytes in [old size, n) as they are in memory when kSetLengthKeepsBytes.
void SetLengthUninitialized(std::string* s, size_t n);

}  // namespace pool_internal
}  // namespace mp

#endif  // MP_POOL_INTERNAL_UNINITIALIZED_STRING_H_
