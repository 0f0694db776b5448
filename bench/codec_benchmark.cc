// The value codec: encode/decode throughput.
//
//   bazel run -c opt //bench:codec_benchmark
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "ipc/codec.h"

namespace {

bool Smoke() { return std::getenv("MP_BENCH_SMOKE") != nullptr; }

struct Order {
  int64_t id = 0;
  std::string customer;
  std::vector<double> prices;
  std::map<std::string, int32_t> quantities;
  bool express = false;
  MP_CODEC_FIELDS(id, customer, prices, quantities, express);
};

std::vector<int64_t> Ints() {
  std::vector<int64_t> v(Smoke() ? 1000 : 1 << 20);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i * 31);
  return v;
}

std::vector<std::string> Strings() {
  std::vector<std::string> v(Smoke() ? 100 : 10000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::string(16 + i % 48, 'a' + i % 26);
  return v;
}

Order MakeOrder() {
  Order o;
  o.id = 42;
  o.customer = "ACME Corporation";
  o.prices = {1.5, 2.25, 99.99, 0.01};
  o.quantities = {{"apples", 3}, {"pears", 7}, {"plums", 11}};
  o.express = true;
  return o;
}

template <typename T>
void Encode(benchmark::State& state, const T& value) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    mp::EncodeTo(value, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
  state.SetItemsProcessed(state.iterations());
}

template <typename T>
void Decode(benchmark::State& state, const T& value) {
  const std::string bytes = mp::Encode(value);
  T out{};
  for (auto _ : state) {
    if (!mp::DecodeInto(bytes, &out).ok()) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes.size()));
  state.SetItemsProcessed(state.iterations());
}

void BM_EncodeVectorInt64(benchmark::State& s) { Encode(s, Ints()); }
void BM_DecodeVectorInt64(benchmark::State& s) { Decode(s, Ints()); }
void BM_EncodeStrings(benchmark::State& s) { Encode(s, Strings()); }
void BM_DecodeStrings(benchmark::State& s) { Decode(s, Strings()); }
void BM_EncodeStruct(benchmark::State& s) { Encode(s, MakeOrder()); }
void BM_DecodeStruct(benchmark::State& s) { Decode(s, MakeOrder()); }
BENCHMARK(BM_EncodeVectorInt64);
BENCHMARK(BM_DecodeVectorInt64);
BENCHMARK(BM_EncodeStrings);
BENCHMARK(BM_DecodeStrings);
BENCHMARK(BM_EncodeStruct);
BENCHMARK(BM_DecodeStruct);

}  // namespace
