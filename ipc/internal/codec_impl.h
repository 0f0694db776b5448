// -----------------------------------------------------------------------------
// File: ipc/internal/codec_impl.h
// -----------------------------------------------------------------------------
//
// The machinery behind `ipc/codec.h`: `Codec<T>` (one specialization per
// supported type family), the `Writer` that appends to a string and the
// bounds-checked `Reader`. Include `ipc/codec.h`, not this file.
//
// Every `Codec<T>` provides:
//   static constexpr size_t kMinSize;   // fewest bytes any encoding takes
//   static constexpr bool kBitwise;     // encoding == the sizeof(T) bytes in
//                                       // memory, and every pattern is valid
//   static void Signature(std::string*);     // appends the type signature
//   static void Encode(Writer&, const T&);
//   static bool Decode(Reader&, T*);         // false: reader holds the error

#ifndef MP_IPC_INTERNAL_CODEC_IMPL_H_
#define MP_IPC_INTERNAL_CODEC_IMPL_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>
#include <array>

#include "absl/base/config.h"
#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#if !defined(ABSL_IS_LITTLE_ENDIAN)
#error "mp's codec writes little-endian values with memcpy: little-endian hosts only"
#endif

namespace mp {
namespace ipc_internal {

// Lets `MP_CODEC_FIELDS` grant access to private members.
struct CodecAccess;

// Appends encoded bytes to a string.
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  void Write(const void* data, size_t size) {
    out_->append(static_cast<const char*>(data), size);
  }
  template <typename T>
  void WriteScalar(T value) {
    Write(&value, sizeof value);
  }
  void WriteCount(size_t n) { WriteScalar<uint64_t>(n); }

 private:
  std::string* out_;
};

// Reads encoded bytes; every read is checked against the bytes left. The
// first failure is kept in `status()`; later reads keep failing.
class Reader {
 public:
  explicit Reader(absl::string_view in)
      : begin_(in.data()), pos_(in.data()), end_(in.data() + in.size()) {}

  size_t remaining() const { return static_cast<size_t>(end_ - pos_); }
  size_t offset() const { return static_cast<size_t>(pos_ - begin_); }

  bool Read(void* out, size_t size) {
    if (ABSL_PREDICT_FALSE(size > remaining())) return Truncated(size);
    if (size != 0) std::memcpy(out, pos_, size);
    pos_ += size;
    return true;
  }
  template <typename T>
  bool ReadScalar(T* value) {
    return Read(value, sizeof *value);
  }

  // Reads a u64 element count and checks that `count * min_element_size`
  // bytes are still there, so a hostile count never drives an allocation.
  bool ReadCount(size_t* count, size_t min_element_size, const char* what);

  // Records a data-loss error (the first one wins) and returns false.
  bool Fail(absl::string_view what);
  bool Truncated(size_t wanted);

  const absl::Status& status() const { return status_; }

 private:
  const char* begin_;
  const char* pos_;
  const char* end_;
  absl::Status status_;
};

template <typename T>
struct AlwaysFalse : std::false_type {};

template <typename T, typename Enable = void>
struct Codec {
  static_assert(AlwaysFalse<T>::value,
                "mp codec: this type is not supported. Supported: arithmetic "
                "types, enums, std::string, vector, array, map, unordered_map, "
                "set, unordered_set, pair, tuple, optional, variant, "
                "monostate, absl::Status, absl::StatusOr, and structs that "
                "list their fields with MP_CODEC_FIELDS(...) or declare "
                "MP_CODEC_BITWISE().");
};

template <typename T>
using CodecOf = Codec<std::remove_cv_t<T>>;

// ---- scalars ---------------------------------------------------------------

template <typename T>
struct ScalarCodec {
  static constexpr size_t kMinSize = sizeof(T);
  static constexpr bool kBitwise = true;
  static void Encode(Writer& w, const T& v) { w.WriteScalar(v); }
  static bool Decode(Reader& r, T* v) { return r.ReadScalar(v); }
};

template <typename T>
char ScalarKind() {
  if (std::is_same<T, char>::value) return 'c';
  if (std::is_same<T, wchar_t>::value || std::is_same<T, char16_t>::value ||
      std::is_same<T, char32_t>::value)
    return 'w';
  if (std::is_floating_point<T>::value) return 'f';
  return std::is_signed<T>::value ? 'i' : 'u';
}

template <typename T>
struct Codec<T, std::enable_if_t<std::is_arithmetic<T>::value &&
                                 !std::is_same<T, bool>::value>>
    : ScalarCodec<T> {
  static void Signature(std::string* s) {
    s->push_back(ScalarKind<T>());
    s->append(std::to_string(sizeof(T)));
  }
};

template <>
struct Codec<bool> {
  static constexpr size_t kMinSize = 1;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) { s->push_back('b'); }
  static void Encode(Writer& w, bool v) { w.WriteScalar<uint8_t>(v ? 1 : 0); }
  static bool Decode(Reader& r, bool* v) {
    uint8_t byte = 0;
    if (!r.ReadScalar(&byte)) return false;
    if (ABSL_PREDICT_FALSE(byte > 1)) return r.Fail("bool byte is not 0 or 1");
    *v = byte == 1;
    return true;
  }
};

template <typename T>
struct Codec<T, std::enable_if_t<std::is_enum<T>::value>> : ScalarCodec<T> {
  static void Signature(std::string* s) {
    s->push_back('e');
    CodecOf<std::underlying_type_t<T>>::Signature(s);
  }
};

template <>
struct Codec<std::monostate> {
  static constexpr size_t kMinSize = 0;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) { s->push_back('0'); }
  static void Encode(Writer&, const std::monostate&) {}
  static bool Decode(Reader&, std::monostate*) { return true; }
};

// ---- strings and sequences --------------------------------------------------

template <>
struct Codec<std::string> {
  static constexpr size_t kMinSize = 8;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) { s->push_back('s'); }
  static void Encode(Writer& w, const std::string& v) {
    w.WriteCount(v.size());
    w.Write(v.data(), v.size());
  }
  static bool Decode(Reader& r, std::string* v) {
    size_t n = 0;
    if (!r.ReadCount(&n, 1, "string")) return false;
    v->resize(n);
    return r.Read(&(*v)[0], n);
  }
};

// Elements of a container must take at least one byte, so that a count is
// bounded by the input size.
template <typename T>
constexpr void CheckElement() {
  static_assert(CodecOf<T>::kMinSize > 0,
                "mp codec: containers of empty types (monostate, tuple<>, "
                "empty structs) are not supported");
}

template <typename T, typename A>
struct Codec<std::vector<T, A>> {
  static constexpr size_t kMinSize = 8;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) {
    s->push_back('v');
    CodecOf<T>::Signature(s);
  }
  static void Encode(Writer& w, const std::vector<T, A>& v) {
    CheckElement<T>();
    w.WriteCount(v.size());
    if constexpr (CodecOf<T>::kBitwise) {
      w.Write(v.data(), v.size() * sizeof(T));
    } else {
      for (const auto& e : v) CodecOf<T>::Encode(w, e);
    }
  }
  static bool Decode(Reader& r, std::vector<T, A>* v) {
    CheckElement<T>();
    size_t n = 0;
    if (!r.ReadCount(&n, CodecOf<T>::kMinSize, "vector")) return false;
    if constexpr (CodecOf<T>::kBitwise) {
      v->resize(n);
      return r.Read(v->data(), n * sizeof(T));
    } else if constexpr (std::is_same<T, bool>::value) {
      v->clear();
      v->reserve(n);
      for (size_t i = 0; i < n; ++i) {
        bool b = false;
        if (!CodecOf<bool>::Decode(r, &b)) return false;
        v->push_back(b);
      }
      return true;
    } else {
      // Decoding into existing elements reuses their storage (DecodeInto).
      v->resize(n);
      for (auto& e : *v) {
        if (!CodecOf<T>::Decode(r, &e)) return false;
      }
      return true;
    }
  }
};

template <typename T, size_t N>
struct Codec<std::array<T, N>> {
  static constexpr size_t kMinSize = N * CodecOf<T>::kMinSize;
  static constexpr bool kBitwise =
      CodecOf<T>::kBitwise && sizeof(std::array<T, N>) == N * sizeof(T);
  static void Signature(std::string* s) {
    s->push_back('a');
    s->append(std::to_string(N));
    CodecOf<T>::Signature(s);
  }
  static void Encode(Writer& w, const std::array<T, N>& v) {
    if constexpr (kBitwise) {
      w.Write(v.data(), sizeof v);
    } else {
      for (const auto& e : v) CodecOf<T>::Encode(w, e);
    }
  }
  static bool Decode(Reader& r, std::array<T, N>* v) {
    if constexpr (kBitwise) {
      return r.Read(v->data(), sizeof *v);
    } else {
      for (auto& e : *v) {
        if (!CodecOf<T>::Decode(r, &e)) return false;
      }
      return true;
    }
  }
};

// ---- associative containers ------------------------------------------------

template <typename C, typename K, typename V, char kTag>
struct MapCodec {
  static constexpr size_t kMinSize = 8;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) {
    s->push_back(kTag);
    CodecOf<K>::Signature(s);
    CodecOf<V>::Signature(s);
  }
  static void Encode(Writer& w, const C& m) {
    w.WriteCount(m.size());
    for (const auto& kv : m) {
      CodecOf<K>::Encode(w, kv.first);
      CodecOf<V>::Encode(w, kv.second);
    }
  }
  static bool Decode(Reader& r, C* m) {
    static_assert(CodecOf<K>::kMinSize + CodecOf<V>::kMinSize > 0,
                  "mp codec: map of empty types");
    size_t n = 0;
    if (!r.ReadCount(&n, CodecOf<K>::kMinSize + CodecOf<V>::kMinSize, "map"))
      return false;
    m->clear();
    for (size_t i = 0; i < n; ++i) {
      K k{};
      V v{};
      if (!CodecOf<K>::Decode(r, &k) || !CodecOf<V>::Decode(r, &v))
        return false;
      if (!m->emplace(std::move(k), std::move(v)).second)
        return r.Fail("duplicate map key");
    }
    return true;
  }
};

template <typename C, typename K, char kTag>
struct SetCodec {
  static constexpr size_t kMinSize = 8;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) {
    s->push_back(kTag);
    CodecOf<K>::Signature(s);
  }
  static void Encode(Writer& w, const C& m) {
    CheckElement<K>();
    w.WriteCount(m.size());
    for (const auto& k : m) CodecOf<K>::Encode(w, k);
  }
  static bool Decode(Reader& r, C* m) {
    CheckElement<K>();
    size_t n = 0;
    if (!r.ReadCount(&n, CodecOf<K>::kMinSize, "set")) return false;
    m->clear();
    for (size_t i = 0; i < n; ++i) {
      K k{};
      if (!CodecOf<K>::Decode(r, &k)) return false;
      if (!m->insert(std::move(k)).second) return r.Fail("duplicate set key");
    }
    return true;
  }
};

template <typename K, typename V, typename C, typename A>
struct Codec<std::map<K, V, C, A>>
    : MapCodec<std::map<K, V, C, A>, K, V, 'm'> {};
template <typename K, typename V, typename H, typename E, typename A>
struct Codec<std::unordered_map<K, V, H, E, A>>
    : MapCodec<std::unordered_map<K, V, H, E, A>, K, V, 'h'> {};
template <typename K, typename C, typename A>
struct Codec<std::set<K, C, A>> : SetCodec<std::set<K, C, A>, K, 'z'> {};
template <typename K, typename H, typename E, typename A>
struct Codec<std::unordered_set<K, H, E, A>>
    : SetCodec<std::unordered_set<K, H, E, A>, K, 'y'> {};

// ---- pair, tuple, optional, variant ------------------------------------------

template <typename A, typename B>
struct Codec<std::pair<A, B>> {
  static constexpr size_t kMinSize = CodecOf<A>::kMinSize + CodecOf<B>::kMinSize;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) {
    s->push_back('p');
    CodecOf<A>::Signature(s);
    CodecOf<B>::Signature(s);
  }
  static void Encode(Writer& w, const std::pair<A, B>& v) {
    CodecOf<A>::Encode(w, v.first);
    CodecOf<B>::Encode(w, v.second);
  }
  static bool Decode(Reader& r, std::pair<A, B>* v) {
    return CodecOf<A>::Decode(r, &v->first) &&
           CodecOf<B>::Decode(r, &v->second);
  }
};

// Encodes a tuple of (possibly reference) members in order.
template <typename... Ts>
struct FieldsCodec {
  static constexpr size_t kMinSize =
      (size_t{0} + ... + CodecOf<std::remove_reference_t<Ts>>::kMinSize);
  static void Signature(std::string* s) {
    (void)s;  // unused when there are no fields
    (CodecOf<std::remove_reference_t<Ts>>::Signature(s), ...);
  }
  template <typename Tuple>
  static void Encode(Writer& w, const Tuple& t) {
    std::apply(
        [&w](const auto&... f) {
          (void)w;
          (CodecOf<std::remove_reference_t<decltype(f)>>::Encode(w, f), ...);
        },
        t);
  }
  template <typename Tuple>
  static bool Decode(Reader& r, Tuple&& t) {
    return std::apply(
        [&r](auto&... f) {
          (void)r;
          return (true && ... &&
                  CodecOf<std::remove_reference_t<decltype(f)>>::Decode(r, &f));
        },
        t);
  }
};

template <typename... Ts>
struct Codec<std::tuple<Ts...>> {
  static constexpr size_t kMinSize = FieldsCodec<Ts...>::kMinSize;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) {
    s->push_back('t');
    s->append(std::to_string(sizeof...(Ts)));
    FieldsCodec<Ts...>::Signature(s);
  }
  static void Encode(Writer& w, const std::tuple<Ts...>& v) {
    FieldsCodec<Ts...>::Encode(w, v);
  }
  static bool Decode(Reader& r, std::tuple<Ts...>* v) {
    return FieldsCodec<Ts...>::Decode(r, *v);
  }
};

template <typename T>
struct Codec<std::optional<T>> {
  static constexpr size_t kMinSize = 1;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) {
    s->push_back('o');
    CodecOf<T>::Signature(s);
  }
  static void Encode(Writer& w, const std::optional<T>& v) {
    w.WriteScalar<uint8_t>(v.has_value() ? 1 : 0);
    if (v.has_value()) CodecOf<T>::Encode(w, *v);
  }
  static bool Decode(Reader& r, std::optional<T>* v) {
    uint8_t present = 0;
    if (!r.ReadScalar(&present)) return false;
    if (present == 0) {
      v->reset();
      return true;
    }
    if (ABSL_PREDICT_FALSE(present != 1))
      return r.Fail("optional presence byte is not 0 or 1");
    v->emplace();
    return CodecOf<T>::Decode(r, &**v);
  }
};

template <typename... Ts>
struct Codec<std::variant<Ts...>> {
  static constexpr size_t kMinSize = 4;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) {
    s->push_back('x');
    s->append(std::to_string(sizeof...(Ts)));
    (CodecOf<Ts>::Signature(s), ...);
  }
  static void Encode(Writer& w, const std::variant<Ts...>& v) {
    w.WriteScalar<uint32_t>(static_cast<uint32_t>(v.index()));
    std::visit(
        [&w](const auto& alt) {
          CodecOf<std::decay_t<decltype(alt)>>::Encode(w, alt);
        },
        v);
  }
  template <size_t I>
  static bool DecodeAlternative(Reader& r, std::variant<Ts...>* v) {
    auto& alt = v->template emplace<I>();
    return CodecOf<std::variant_alternative_t<I, std::variant<Ts...>>>::Decode(
        r, &alt);
  }
  template <size_t... Is>
  static bool DecodeIndex(Reader& r, uint32_t index, std::variant<Ts...>* v,
                          std::index_sequence<Is...>) {
    bool ok = false;
    ((index == Is ? (ok = DecodeAlternative<Is>(r, v), true) : false) || ...);
    return ok;
  }
  static bool Decode(Reader& r, std::variant<Ts...>* v) {
    uint32_t index = 0;
    if (!r.ReadScalar(&index)) return false;
    if (ABSL_PREDICT_FALSE(index >= sizeof...(Ts)))
      return r.Fail("variant index out of range");
    return DecodeIndex(r, index, v, std::index_sequence_for<Ts...>{});
  }
};

// ---- absl::Status, absl::StatusOr -------------------------------------------

template <>
struct Codec<absl::Status> {
  static constexpr size_t kMinSize = 4 + 8;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) { s->push_back('S'); }
  static void Encode(Writer& w, const absl::Status& v) {
    w.WriteScalar<int32_t>(static_cast<int32_t>(v.code()));
    absl::string_view m = v.message();
    w.WriteCount(m.size());
    w.Write(m.data(), m.size());
  }
  static bool Decode(Reader& r, absl::Status* v);  // codec.cc
};

template <typename T>
struct Codec<absl::StatusOr<T>> {
  static constexpr size_t kMinSize = Codec<absl::Status>::kMinSize;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) {
    s->push_back('R');
    CodecOf<T>::Signature(s);
  }
  static void Encode(Writer& w, const absl::StatusOr<T>& v) {
    Codec<absl::Status>::Encode(w, v.status());
    if (v.ok()) CodecOf<T>::Encode(w, *v);
  }
  static bool Decode(Reader& r, absl::StatusOr<T>* v) {
    absl::Status status;
    if (!Codec<absl::Status>::Decode(r, &status)) return false;
    if (!status.ok()) {
      *v = std::move(status);
      return true;
    }
    T value{};
    if (!CodecOf<T>::Decode(r, &value)) return false;
    *v = std::move(value);
    return true;
  }
};

// ---- user structs -------------------------------------------------------------

// A friend of every class that uses MP_CODEC_FIELDS or MP_CODEC_BITWISE, so
// private members and tags work.
struct CodecAccess {
  template <typename T>
  static constexpr auto HasFields(int)
      -> decltype(std::declval<typename T::mp_codec_fields_tag*>(), true) {
    return true;
  }
  template <typename T>
  static constexpr bool HasFields(...) {
    return false;
  }
  template <typename T>
  static constexpr auto IsBitwise(int)
      -> decltype(std::declval<typename T::mp_codec_bitwise_tag*>(), true) {
    return true;
  }
  template <typename T>
  static constexpr bool IsBitwise(...) {
    return false;
  }
  template <typename T>  // T may be const
  static auto Fields(T& v) {
    return v.mp_codec_fields();
  }
  template <typename T>
  static auto FieldsTupleOf() -> decltype(std::declval<T&>().mp_codec_fields());
};

template <typename Tuple>
struct FieldsCodecOf;
template <typename... Ts>
struct FieldsCodecOf<std::tuple<Ts...>> {
  using type = FieldsCodec<Ts...>;
};

template <typename T>
struct Codec<T, std::enable_if_t<CodecAccess::HasFields<T>(0)>> {
  using Fields =
      typename FieldsCodecOf<decltype(CodecAccess::FieldsTupleOf<T>())>::type;
  static constexpr size_t kMinSize = Fields::kMinSize;
  static constexpr bool kBitwise = false;
  static void Signature(std::string* s) {
    s->push_back('{');
    Fields::Signature(s);
    s->push_back('}');
  }
  static void Encode(Writer& w, const T& v) {
    Fields::Encode(w, CodecAccess::Fields(v));
  }
  static bool Decode(Reader& r, T* v) {
    return Fields::Decode(r, CodecAccess::Fields(*v));
  }
};

template <typename T>
struct Codec<T, std::enable_if_t<CodecAccess::IsBitwise<T>(0)>>
    : ScalarCodec<T> {
  static_assert(std::is_trivially_copyable<T>::value,
                "MP_CODEC_BITWISE() needs a trivially copyable type");
  static void Signature(std::string* s) {
    s->push_back('B');
    s->append(std::to_string(sizeof(T)));
  }
};

// ---- the message header ---------------------------------------------------------

inline constexpr uint8_t kCodecMagic = 0xB5;
inline constexpr uint8_t kCodecVersion = 1;
inline constexpr size_t kCodecHeaderSize = 6;  // magic, version, u32 fingerprint

uint32_t Fingerprint(absl::string_view signature);

template <typename T>
const std::string& SignatureOf() {
  static const std::string* const signature = [] {
    auto* s = new std::string;
    CodecOf<T>::Signature(s);
    return s;
  }();
  return *signature;
}

template <typename T>
uint32_t FingerprintOf() {
  static const uint32_t fingerprint = Fingerprint(SignatureOf<T>());
  return fingerprint;
}

// Checks the header; on success `r` is positioned after it.
bool ReadHeader(Reader& r, uint32_t fingerprint, absl::string_view signature,
                absl::Status* status);

// The final status of a decode: the reader's error, or trailing bytes.
absl::Status FinishDecode(const Reader& r, bool ok);

}  // namespace ipc_internal
}  // namespace mp

#endif  // MP_IPC_INTERNAL_CODEC_IMPL_H_
