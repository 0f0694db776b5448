// libFuzzer target for the codec (clang only; see docs/ipc.md):
//   bazel build --config=fuzz //ipc:codec_fuzzer
//   codec_fuzzer -max_total_time=120 ipc/testdata/codec_corpus
#include <cstddef>
#include <cstdint>

#include "ipc/internal/codec_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mp::ipc_internal::CodecFuzzOne(data, size);
  return 0;
}
