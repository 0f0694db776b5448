#include "ipc/codec.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace mp {
namespace ipc_internal {

bool Reader::Fail(absl::string_view what) {
  if (status_.ok()) {
    status_ = absl::DataLossError(
        absl::StrCat("mp::Decode: ", what, " at byte offset ", offset()));
  }
  pos_ = end_;  // nothing more can be read
  return false;
}

bool Reader::Truncated(size_t wanted) {
  return Fail(absl::StrCat("truncated input: need ", wanted, " bytes, ",
                           remaining(), " left"));
}

bool Reader::ReadCount(size_t* count, size_t min_element_size,
                       const char* what) {
  uint64_t n = 0;
  if (!ReadScalar(&n)) return false;
  // Division, not multiplication: a hostile count cannot overflow.
  if (ABSL_PREDICT_FALSE(n > remaining() / min_element_size)) {
    return Fail(absl::StrCat(what, " count ", n, " exceeds what the ",
                             remaining(), " remaining bytes can hold"));
  }
  *count = static_cast<size_t>(n);
  return true;
}

uint32_t Fingerprint(absl::string_view signature) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : signature) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

bool ReadHeader(Reader& r, uint32_t fingerprint, absl::string_view signature,
                absl::Status* status) {
  uint8_t magic = 0, version = 0;
  uint32_t got = 0;
  if (!r.ReadScalar(&magic) || magic != kCodecMagic) {
    *status = absl::DataLossError(
        "mp::Decode: not an mp codec message (missing or bad magic byte)");
    return false;
  }
  if (!r.ReadScalar(&version) || version != kCodecVersion) {
    *status = absl::DataLossError(absl::StrCat(
        "mp::Decode: unsupported codec format version ", version));
    return false;
  }
  if (!r.ReadScalar(&got)) {
    *status = absl::DataLossError("mp::Decode: truncated header");
    return false;
  }
  if (got != fingerprint) {
    *status = absl::InvalidArgumentError(absl::StrCat(
        "mp::Decode: the message holds a different type (fingerprint ",
        absl::Hex(got), ", expected ", absl::Hex(fingerprint), " for `",
        signature, "`)"));
    return false;
  }
  return true;
}

absl::Status FinishDecode(const Reader& r, bool ok) {
  if (!ok) return r.status();
  if (r.remaining() != 0) {
    return absl::DataLossError(absl::StrCat("mp::Decode: ", r.remaining(),
                                            " trailing bytes at byte offset ",
                                            r.offset()));
  }
  return absl::OkStatus();
}

bool Codec<absl::Status>::Decode(Reader& r, absl::Status* v) {
  int32_t code = 0;
  if (!r.ReadScalar(&code)) return false;
  if (code < 0 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) {
    return r.Fail(absl::StrCat("status code ", code, " out of range"));
  }
  std::string message;
  if (!Codec<std::string>::Decode(r, &message)) return false;
  if (code == 0) {
    if (!message.empty()) return r.Fail("OK status with a message");
    *v = absl::OkStatus();
    return true;
  }
  *v = absl::Status(static_cast<absl::StatusCode>(code), message);
  return true;
}

}  // namespace ipc_internal
}  // namespace mp
