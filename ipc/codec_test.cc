#include "ipc/codec.h"

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace {

struct Point {
  int x = 0;
  std::string label;
  MP_CODEC_FIELDS(x, label);
  bool operator==(const Point& o) const {
    return x == o.x && label == o.label;
  }
};

class Secret {
 public:
  Secret() = default;
  Secret(double v, std::vector<Point> ps) : value_(v), points_(std::move(ps)) {}
  bool operator==(const Secret& o) const {
    return value_ == o.value_ && points_ == o.points_;
  }

 private:
  double value_ = 0;
  std::vector<Point> points_;
  MP_CODEC_FIELDS(value_, points_);
};

struct Empty {
  MP_CODEC_FIELDS();
  bool operator==(const Empty&) const { return true; }
};

struct Pixel {
  uint8_t r, g, b, a;
  MP_CODEC_BITWISE();
  bool operator==(const Pixel& o) const {
    return r == o.r && g == o.g && b == o.b && a == o.a;
  }
};

enum class Color : uint16_t { kRed = 1, kBlue = 300 };

template <typename T>
T RoundTrip(const T& value) {
  std::string bytes = mp::Encode(value);
  absl::StatusOr<T> back = mp::Decode<T>(bytes);
  EXPECT_TRUE(back.ok()) << back.status();
  return back.ok() ? *std::move(back) : T{};
}

template <typename T>
void ExpectRoundTrip(const T& value) {
  EXPECT_TRUE(RoundTrip(value) == value);
}

TEST(CodecTest, Arithmetic) {
  ExpectRoundTrip(int8_t{-5});
  ExpectRoundTrip(uint8_t{250});
  ExpectRoundTrip(int16_t{-30000});
  ExpectRoundTrip(uint16_t{60000});
  ExpectRoundTrip(int32_t{std::numeric_limits<int32_t>::min()});
  ExpectRoundTrip(uint32_t{std::numeric_limits<uint32_t>::max()});
  ExpectRoundTrip(int64_t{std::numeric_limits<int64_t>::min()});
  ExpectRoundTrip(uint64_t{std::numeric_limits<uint64_t>::max()});
  ExpectRoundTrip('c');
  ExpectRoundTrip(L'w');
  ExpectRoundTrip(u'x');
  ExpectRoundTrip(U'y');
  ExpectRoundTrip(1.5f);
  ExpectRoundTrip(-2.25);
  ExpectRoundTrip(3.5L);
  ExpectRoundTrip(true);
  ExpectRoundTrip(false);
  ExpectRoundTrip(Color::kBlue);
  ExpectRoundTrip(std::numeric_limits<double>::infinity());
}

TEST(CodecTest, FixedWidthLittleEndianLayout) {
  std::string bytes = mp::Encode(int32_t{0x01020304});
  ASSERT_EQ(bytes.size(), 6u + 4u);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 0xB5);
  EXPECT_EQ(bytes[1], 1);
  EXPECT_EQ(bytes.substr(6), std::string("\x04\x03\x02\x01", 4));
  std::string s = mp::Encode(std::string("ab"));
  EXPECT_EQ(s.substr(6), std::string("\x02\0\0\0\0\0\0\0ab", 10));
}

TEST(CodecTest, Containers) {
  ExpectRoundTrip(std::string());
  ExpectRoundTrip(std::string("with\0nul", 8));
  ExpectRoundTrip(std::vector<int64_t>{1, -2, 3});
  ExpectRoundTrip(std::vector<int64_t>{});
  ExpectRoundTrip(std::vector<bool>{true, false, true});
  ExpectRoundTrip(std::vector<std::string>{"a", "", "ccc"});
  ExpectRoundTrip(std::array<int, 3>{1, 2, 3});
  ExpectRoundTrip(std::array<std::string, 2>{"x", "y"});
  ExpectRoundTrip(std::map<std::string, int>{{"a", 1}, {"b", 2}});
  ExpectRoundTrip(std::unordered_map<int, std::string>{{1, "a"}, {2, "b"}});
  ExpectRoundTrip(std::set<int>{3, 1, 2});
  ExpectRoundTrip(std::unordered_set<std::string>{"p", "q"});
  ExpectRoundTrip(std::pair<int, std::string>{1, "one"});
  ExpectRoundTrip(std::tuple<>{});
  ExpectRoundTrip(std::tuple<int, bool, std::string>{1, true, "t"});
  ExpectRoundTrip(std::optional<std::string>{});
  ExpectRoundTrip(std::optional<std::string>{"set"});
  ExpectRoundTrip(std::monostate{});
  using V = std::variant<std::monostate, int, std::string>;
  ExpectRoundTrip(V{});
  ExpectRoundTrip(V{5});
  ExpectRoundTrip(V{std::string("s")});
  ExpectRoundTrip(std::vector<Pixel>{{1, 2, 3, 4}, {5, 6, 7, 8}});
}

TEST(CodecTest, NestedAndStructs) {
  ExpectRoundTrip(Point{3, "p"});
  ExpectRoundTrip(Secret(2.5, {{1, "a"}, {2, "b"}}));
  ExpectRoundTrip(Empty{});
  std::map<std::string, std::vector<std::optional<std::tuple<int, Point>>>> m;
  m["k"] = {std::nullopt, std::make_tuple(1, Point{2, "q"})};
  m["empty"] = {};
  ExpectRoundTrip(m);
  std::vector<std::vector<std::array<double, 2>>> grid = {{{1, 2}}, {}, {{3, 4}, {5, 6}}};
  ExpectRoundTrip(grid);
}

TEST(CodecTest, Status) {
  absl::Status out = absl::InternalError("x");
  ASSERT_TRUE(mp::DecodeInto(mp::Encode(absl::OkStatus()), &out).ok());
  EXPECT_TRUE(out.ok());
  absl::Status s = absl::NotFoundError("no such thing");
  ASSERT_TRUE(mp::DecodeInto(mp::Encode(s), &out).ok());
  EXPECT_EQ(out, s);
  // Inside other values, Status decodes normally.
  ExpectRoundTrip(std::vector<absl::Status>{absl::OkStatus(), s});
  absl::StatusOr<std::string> good = std::string("value");
  absl::StatusOr<std::string> back = RoundTrip(good);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "value");
  absl::StatusOr<std::string> bad = absl::UnavailableError("down");
  EXPECT_EQ(RoundTrip(bad).status(), bad.status());
}

TEST(CodecTest, EncodeToAppends) {
  std::string out = "prefix";
  mp::EncodeTo(7, &out);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(*mp::Decode<int>(absl::string_view(out).substr(6)), 7);
}

TEST(CodecTest, DecodeIntoReusesStorage) {
  std::vector<int64_t> v;
  v.reserve(100);
  const int64_t* data = v.data();
  ASSERT_TRUE(mp::DecodeInto(mp::Encode(std::vector<int64_t>{1, 2}), &v).ok());
  EXPECT_EQ(v, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(v.data(), data);
}

TEST(CodecTest, DecodeIntoOverwritesPreviousContents) {
  std::vector<std::string> v = {"old long string", "b", "c"};
  ASSERT_TRUE(mp::DecodeInto(mp::Encode(std::vector<std::string>{"x"}), &v).ok());
  EXPECT_EQ(v, (std::vector<std::string>{"x"}));
  std::vector<std::optional<Point>> ps = {Point{1, "one"}, std::nullopt};
  std::vector<std::optional<Point>> in = {std::nullopt, Point{2, "two"}, Point{3, ""}};
  ASSERT_TRUE(mp::DecodeInto(mp::Encode(in), &ps).ok());
  EXPECT_EQ(ps, in);
  std::map<int, int> m = {{1, 1}, {2, 2}};
  ASSERT_TRUE(mp::DecodeInto(mp::Encode(std::map<int, int>{{3, 3}}), &m).ok());
  EXPECT_EQ(m, (std::map<int, int>{{3, 3}}));
}

TEST(CodecTest, LargeBitwiseVector) {
  std::vector<int64_t> v(1 << 20);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i * 7);
  std::string bytes = mp::Encode(v);
  EXPECT_EQ(bytes.size(), 6u + 8u + v.size() * 8);
  ExpectRoundTrip(v);
}

// ---- hostile input ---------------------------------------------------------

void ExpectCode(const absl::Status& s, absl::StatusCode code,
                const std::string& needle) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_NE(s.message().find(needle), std::string::npos) << s;
}

TEST(CodecTest, EmptyAndBadHeader) {
  ExpectCode(mp::Decode<int>("").status(), absl::StatusCode::kDataLoss,
             "magic");
  ExpectCode(mp::Decode<int>("garbage bytes!").status(),
             absl::StatusCode::kDataLoss, "magic");
  std::string bytes = mp::Encode(1);
  bytes[1] = 9;
  ExpectCode(mp::Decode<int>(bytes).status(), absl::StatusCode::kDataLoss,
             "version");
  ExpectCode(mp::Decode<int>(mp::Encode(1).substr(0, 4)).status(),
             absl::StatusCode::kDataLoss, "header");
}

TEST(CodecTest, WrongTypeIsInvalidArgument) {
  ExpectCode(mp::Decode<int64_t>(mp::Encode(int32_t{1})).status(),
             absl::StatusCode::kInvalidArgument, "different type");
  ExpectCode(mp::Decode<std::vector<int>>(mp::Encode(std::string("x")))
                 .status(),
             absl::StatusCode::kInvalidArgument, "different type");
  ExpectCode(mp::Decode<Point>(mp::Encode(std::make_tuple(1, std::string())))
                 .status(),
             absl::StatusCode::kInvalidArgument, "different type");
}

TEST(CodecTest, EveryTruncationFails) {
  std::map<std::string, std::vector<std::optional<std::tuple<int, Point>>>> m;
  m["k"] = {std::nullopt, std::make_tuple(1, Point{2, "q"})};
  std::string bytes = mp::Encode(m);
  for (size_t n = 0; n < bytes.size(); ++n) {
    absl::Status s = mp::DecodeInto(bytes.substr(0, n), &m);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << n << ": " << s;
  }
}

TEST(CodecTest, TrailingBytesFail) {
  ExpectCode(mp::Decode<int>(mp::Encode(1) + "x").status(),
             absl::StatusCode::kDataLoss, "1 trailing bytes");
}

// Builds a message for T with a hand-written body.
template <typename T>
std::string WithBody(const std::string& body) {
  std::string header = mp::Encode(T{}).substr(0, 6);
  return header + body;
}

std::string U64(uint64_t v) { return std::string(reinterpret_cast<char*>(&v), 8); }
std::string U32(uint32_t v) { return std::string(reinterpret_cast<char*>(&v), 4); }

TEST(CodecTest, HugeCountsRejectedBeforeAllocation) {
  const uint64_t kTerabyte = uint64_t{1} << 40;
  ExpectCode(mp::Decode<std::string>(WithBody<std::string>(U64(kTerabyte)))
                 .status(),
             absl::StatusCode::kDataLoss, "string count 1099511627776");
  ExpectCode(
      mp::Decode<std::vector<int64_t>>(
          WithBody<std::vector<int64_t>>(U64(kTerabyte) + "12345678"))
          .status(),
      absl::StatusCode::kDataLoss, "vector count");
  // A count that would overflow count * element_size.
  ExpectCode(mp::Decode<std::vector<int64_t>>(
                 WithBody<std::vector<int64_t>>(U64(~uint64_t{0})))
                 .status(),
             absl::StatusCode::kDataLoss, "vector count");
  // Nested: each string needs at least 8 bytes, so 2 strings need 16.
  ExpectCode(mp::Decode<std::vector<std::string>>(
                 WithBody<std::vector<std::string>>(U64(2) + U64(0)))
                 .status(),
             absl::StatusCode::kDataLoss, "vector count 2");
  ExpectCode(mp::Decode<std::map<int, int>>(
                 WithBody<std::map<int, int>>(U64(kTerabyte)))
                 .status(),
             absl::StatusCode::kDataLoss, "map count");
  ExpectCode(mp::Decode<std::set<int>>(WithBody<std::set<int>>(U64(5)))
                 .status(),
             absl::StatusCode::kDataLoss, "set count");
}

TEST(CodecTest, InvalidTagBytesFail) {
  ExpectCode(mp::Decode<bool>(WithBody<bool>("\x02")).status(),
             absl::StatusCode::kDataLoss, "bool");
  ExpectCode(mp::Decode<std::vector<bool>>(
                 WithBody<std::vector<bool>>(U64(1) + "\x07"))
                 .status(),
             absl::StatusCode::kDataLoss, "bool");
  ExpectCode(mp::Decode<std::optional<int>>(
                 WithBody<std::optional<int>>("\x02" + U32(1)))
                 .status(),
             absl::StatusCode::kDataLoss, "optional");
  using V = std::variant<int, std::string>;
  ExpectCode(mp::Decode<V>(WithBody<V>(U32(2) + U32(0))).status(),
             absl::StatusCode::kDataLoss, "variant index");
  absl::Status out;
  ExpectCode(mp::DecodeInto(WithBody<absl::Status>(U32(17) + U64(0)), &out),
             absl::StatusCode::kDataLoss, "status code 17");
  ExpectCode(mp::DecodeInto(WithBody<absl::Status>(U32(-1) + U64(0)), &out),
             absl::StatusCode::kDataLoss, "status code -1");
  ExpectCode(mp::DecodeInto(WithBody<absl::Status>(U32(0) + U64(1) + "m"), &out),
             absl::StatusCode::kDataLoss, "OK status with a message");
}

TEST(CodecTest, DuplicateKeysFail) {
  std::string two_ones = U64(2) + U32(1) + U32(5) + U32(1) + U32(6);
  ExpectCode(mp::Decode<std::map<int, int>>(WithBody<std::map<int, int>>(two_ones))
                 .status(),
             absl::StatusCode::kDataLoss, "duplicate map key");
  using UM = std::unordered_map<int, int>;
  ExpectCode(mp::Decode<UM>(WithBody<UM>(two_ones)).status(),
             absl::StatusCode::kDataLoss, "duplicate map key");
  ExpectCode(mp::Decode<std::set<int>>(
                 WithBody<std::set<int>>(U64(2) + U32(1) + U32(1)))
                 .status(),
             absl::StatusCode::kDataLoss, "duplicate set key");
}

TEST(CodecTest, RandomGarbageNeverCrashes) {
  std::mt19937 rng(12345);
  using T = std::map<std::string, std::vector<std::optional<std::tuple<int, Point>>>>;
  std::string header = mp::Encode(T{}).substr(0, 6);
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string body(rng() % 64, '\0');
    for (char& c : body) c = static_cast<char>(rng() % 4 == 0 ? rng() : rng() % 3);
    if (i % 2 == 0 && body.size() >= 8) body.replace(0, 8, U64(rng() % 2));
    absl::StatusOr<T> v = mp::Decode<T>(header + body);
    if (v.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
    }
  }
  EXPECT_GT(ok, 0);  // some small-count inputs are valid
}

}  // namespace
