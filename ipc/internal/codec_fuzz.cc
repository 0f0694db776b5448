#include "ipc/internal/codec_fuzz.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ipc/codec.h"

namespace mp {
namespace ipc_internal {
namespace {

struct FuzzInner {
  uint16_t a = 0;
  std::vector<bool> flags;
  MP_CODEC_FIELDS(a, flags);
  bool operator==(const FuzzInner& o) const {
    return a == o.a && flags == o.flags;
  }
};

struct FuzzRecord {
  int32_t id = 0;
  std::string name;
  std::vector<std::pair<uint8_t, bool>> tags;
  std::array<int16_t, 3> xyz{};
  std::optional<FuzzInner> inner;
  MP_CODEC_FIELDS(id, name, tags, xyz, inner);
  bool operator==(const FuzzRecord& o) const {
    return id == o.id && name == o.name && tags == o.tags && xyz == o.xyz &&
           inner == o.inner;
  }
};

using T0 = int64_t;
using T1 = std::string;
using T2 = std::vector<int32_t>;
using T3 = std::vector<std::string>;
using T4 = std::map<std::string, std::vector<uint64_t>>;
using T5 = std::tuple<bool, std::optional<int16_t>,
                      std::variant<std::monostate, uint8_t, std::string>>;
using T6 = absl::StatusOr<std::set<int32_t>>;
using T7 = std::vector<FuzzRecord>;
using T8 = std::unordered_map<int32_t, std::string>;
using T9 = std::vector<std::vector<std::array<uint8_t, 2>>>;
using T10 = absl::Status;

template <typename T>
bool Equal(const T& a, const T& b) {
  return a == b;
}
template <typename T>
bool Equal(const absl::StatusOr<T>& a, const absl::StatusOr<T>& b) {
  if (a.ok() != b.ok()) return false;
  return a.ok() ? *a == *b : a.status() == b.status();
}

template <typename T>
bool Run(absl::string_view body) {
  std::string message;
  Writer w(&message);
  w.WriteScalar<uint8_t>(kCodecMagic);
  w.WriteScalar<uint8_t>(kCodecVersion);
  w.WriteScalar<uint32_t>(FingerprintOf<T>());
  message.append(body.data(), body.size());
  T first{};
  absl::Status status = DecodeInto(message, &first);
  if (!status.ok()) {
    if (status.code() != absl::StatusCode::kDataLoss) {
      std::fprintf(stderr, "codec fuzz: unexpected error code: %s\n",
                   status.ToString().c_str());
      std::abort();
    }
    return false;
  }
  std::string again = Encode(first);
  T second{};
  if (!DecodeInto(again, &second).ok() || !Equal(first, second)) {
    std::fprintf(stderr, "codec fuzz: re-encoded value does not round-trip\n");
    std::abort();
  }
  return true;
}

template <typename T>
std::string Seed(int selector, const T& value) {
  std::string encoded = Encode(value);
  std::string out(1, static_cast<char>(selector));
  out.append(encoded, kCodecHeaderSize, std::string::npos);
  return out;
}

}  // namespace

bool CodecFuzzOne(const uint8_t* data, size_t size) {
  if (size == 0) return false;
  absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % kCodecFuzzTypes) {
    case 0: return Run<T0>(body);
    case 1: return Run<T1>(body);
    case 2: return Run<T2>(body);
    case 3: return Run<T3>(body);
    case 4: return Run<T4>(body);
    case 5: return Run<T5>(body);
    case 6: return Run<T6>(body);
    case 7: return Run<T7>(body);
    case 8: return Run<T8>(body);
    case 9: return Run<T9>(body);
    default: return Run<T10>(body);
  }
}

std::string CodecFuzzSeed(int selector, int variant) {
  bool alt = variant % 2 == 1;
  switch (selector) {
    case 0: return Seed(0, T0{alt ? -1 : 42});
    case 1: return Seed(1, T1(alt ? "" : "hello, codec"));
    case 2: return Seed(2, alt ? T2{} : T2{1, -2, 3, 1 << 30});
    case 3: return Seed(3, alt ? T3{""} : T3{"a", "bc", "def"});
    case 4:
      return Seed(4, alt ? T4{} : T4{{"x", {1, 2}}, {"yy", {}}, {"z", {7}}});
    case 5:
      return Seed(5, alt ? T5{false, std::nullopt, std::monostate{}}
                         : T5{true, int16_t{-7}, std::string("v")});
    case 6:
      return Seed(6, alt ? T6(absl::NotFoundError("gone"))
                         : T6(std::set<int32_t>{3, 1, 2}));
    case 7: {
      FuzzRecord r;
      r.id = 7;
      r.name = "rec";
      r.tags = {{1, true}, {2, false}};
      r.xyz = {1, -1, 300};
      if (!alt) r.inner = FuzzInner{9, {true, false, true}};
      return Seed(7, T7{r, FuzzRecord{}});
    }
    case 8:
      return Seed(8, alt ? T8{} : T8{{1, "one"}, {-2, "minus two"}});
    case 9:
      return Seed(9, alt ? T9{{}} : T9{{{{1, 2}}, {{3, 4}}}, {}});
    default:
      return Seed(10, alt ? absl::OkStatus()
                          : absl::PermissionDeniedError("no"));
  }
}

}  // namespace ipc_internal
}  // namespace mp
