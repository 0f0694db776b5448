// -----------------------------------------------------------------------------
// File: ipc/internal/codec_fuzz.h
// -----------------------------------------------------------------------------
//
// Test-only. The codec's fuzz entry point, shared by the libFuzzer binary
// (`//ipc:codec_fuzzer`, clang) and the seed-corpus replay test
// (`//ipc:codec_fuzz_test`, any compiler).
//
// The first input byte picks one of `kCodecFuzzTypes` decode targets; the
// rest is the value's body, behind a correct header for that type (so the
// fuzzer explores the body instead of the 32-bit fingerprint). A value that
// decodes must re-encode and decode to an equal value; anything else aborts.

#ifndef MP_IPC_INTERNAL_CODEC_FUZZ_H_
#define MP_IPC_INTERNAL_CODEC_FUZZ_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace mp {
namespace ipc_internal {

inline constexpr int kCodecFuzzTypes = 11;

// Runs one input. Returns true when the body decoded as the selected type.
bool CodecFuzzOne(const uint8_t* data, size_t size);

// A valid fuzz input (selector byte + body) for type `selector`, used to
// write the seed corpus. `variant` picks one of a few sample values.
std::string CodecFuzzSeed(int selector, int variant);

}  // namespace ipc_internal
}  // namespace mp

#endif  // MP_IPC_INTERNAL_CODEC_FUZZ_H_
