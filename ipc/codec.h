// -----------------------------------------------------------------------------
// File: ipc/codec.h
// -----------------------------------------------------------------------------
//
// The value codec: what Python's `pickle` is to `multiprocessing`, for C++
// values. `mp::Encode()` turns a value into bytes, `mp::Decode<T>()` turns
// bytes back into a `T`, and decoding untrusted bytes is safe: truncated,
// corrupt, oversized or foreign input gives an error status, never a crash,
// an out-of-bounds read or an allocation larger than the input justifies.
//
//   struct Point {
//     int x;
//     std::string label;
//     MP_CODEC_FIELDS(x, label);
//   };
//
//   std::string bytes = mp::Encode(std::vector<Point>{{1, "a"}, {2, "b"}});
//   absl::StatusOr<std::vector<Point>> points =
//       mp::Decode<std::vector<Point>>(bytes);
//
// Supported types, nested arbitrarily: every arithmetic type, enums (as their
// underlying type), `bool`, `std::string`, `std::vector`, `std::array`,
// `std::map`, `std::unordered_map`, `std::set`, `std::unordered_set`,
// `std::pair`, `std::tuple`, `std::optional`, `std::variant`,
// `std::monostate` (an empty value, e.g. for a `void` result),
// `absl::Status` (code and message; payloads are dropped),
// `absl::StatusOr<T>`, and user types that opt in:
//
//   * `MP_CODEC_FIELDS(a, b, ...)` in the class body lists the members to
//     encode, in order (private members too). The type must be default
//     constructible; decoding assigns the listed members.
//   * `MP_CODEC_BITWISE()` in the body of a trivially copyable type encodes
//     its `sizeof(T)` bytes as they are in memory (padding included). Only
//     for types where every bit pattern is a valid value: no pointers, bools
//     or enums with restricted values.
//
// Arithmetic types, enums, `MP_CODEC_BITWISE` types and `std::array`s of
// them are "bitwise": a vector or array of them is one memcpy each way.
//
// Format (version 1; both ends must run the same mp version):
//
//   message  := 0xB5  0x01  fingerprint:u32  value
//   value    := by type, little-endian, fixed width, no padding:
//     arithmetic, enum    sizeof(T) bytes (bool: one byte, 0 or 1)
//     string, vector      count:u64, then the elements (bytes for a string)
//     array<T, N>         the N elements
//     map, set            count:u64, then key (and value) per entry
//     pair, tuple, struct the members in order
//     optional            present:u8 (0 or 1), then the value if present
//     variant             index:u32, then the alternative
//     monostate           nothing
//     Status              code:i32, message as a string
//     StatusOr<T>         the Status; the T follows when the code is OK
//
// There are no per-value type tags. Instead the header carries a 32-bit
// fingerprint (FNV-1a) of the type's structure (e.g. `vi8` for
// `std::vector<int64_t>`), so decoding as a different type, or decoding
// bytes that were never a codec message, is caught up front.
//
// Errors from `Decode()`:
//   * `kInvalidArgument`: a well-formed header for a different type (the
//     fingerprints differ).
//   * `kDataLoss`: anything else wrong with the bytes: no or bad header,
//     truncated input, a count larger than the bytes left could hold, a bool
//     or optional byte other than 0/1, a variant index or status code out of
//     range, a duplicate map or set key, trailing bytes after the value.
// The message says what and at which byte offset.
//
// Limits: a decoded value is built from the input only, so memory use is
// bounded by the input size times the type's expansion (e.g. a one-byte
// empty `std::optional<std::array<char, 1000>>` becomes 1001 bytes). Types
// are fixed at compile time, so hostile input cannot drive deep recursion.
// Containers of empty types (`std::vector<std::monostate>`) do not compile.

#ifndef MP_IPC_CODEC_H_
#define MP_IPC_CODEC_H_

#include <string>
#include <tuple>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ipc/internal/codec_impl.h"

// MP_CODEC_FIELDS(field, ...)
//
// Opts a class into the codec by listing the members to encode, in order.
// Place it anywhere in the class body, followed by a semicolon.
#define MP_CODEC_FIELDS(...)                                         \
  friend struct ::mp::ipc_internal::CodecAccess;                     \
  auto mp_codec_fields() { return std::tie(__VA_ARGS__); }           \
  auto mp_codec_fields() const { return std::tie(__VA_ARGS__); }     \
  using mp_codec_fields_tag = void

// MP_CODEC_BITWISE()
//
// Opts a trivially copyable class into the codec as its raw bytes (see the
// file comment for when that is valid). Followed by a semicolon.
#define MP_CODEC_BITWISE() using mp_codec_bitwise_tag = void

namespace mp {

// EncodeTo()
//
// Appends the encoding of `value` (header included) to `*out`.
template <typename T>
void EncodeTo(const T& value, std::string* out) {
  ipc_internal::Writer w(out);
  w.WriteScalar<uint8_t>(ipc_internal::kCodecMagic);
  w.WriteScalar<uint8_t>(ipc_internal::kCodecVersion);
  w.WriteScalar<uint32_t>(ipc_internal::FingerprintOf<T>());
  ipc_internal::CodecOf<T>::Encode(w, value);
}

// Encode()
//
// Returns the encoding of `value`.
template <typename T>
std::string Encode(const T& value) {
  std::string out;
  EncodeTo(value, &out);
  return out;
}

// DecodeInto()
//
// Like `Decode()`, but assigns into `*value`, reusing its storage (vectors
// and strings keep their capacity). On error `*value` holds a partial result.
template <typename T>
absl::Status DecodeInto(absl::string_view bytes, T* value) {
  ipc_internal::Reader r(bytes);
  absl::Status status;
  if (!ipc_internal::ReadHeader(r, ipc_internal::FingerprintOf<T>(),
                                ipc_internal::SignatureOf<T>(), &status)) {
    return status;
  }
  bool ok = ipc_internal::CodecOf<T>::Decode(r, value);
  return ipc_internal::FinishDecode(r, ok);
}

// Decode()
//
// Decodes `bytes`, which must hold exactly one encoded `T` (trailing bytes
// are an error). Never crashes on hostile input; see the file comment for
// the errors. For `absl::Status` itself use `DecodeInto()`: a
// `StatusOr<absl::Status>` cannot tell a decode error from a decoded error.
template <typename T>
absl::StatusOr<T> Decode(absl::string_view bytes) {
  static_assert(!std::is_same<T, absl::Status>::value,
                "mp::Decode<absl::Status> is ambiguous; use "
                "mp::DecodeInto(bytes, &status)");
  T value{};
  absl::Status status = DecodeInto(bytes, &value);
  if (!status.ok()) return status;
  return value;
}

}  // namespace mp

#endif  // MP_IPC_CODEC_H_
