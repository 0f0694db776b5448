#include "ipc/internal/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "process/status_macros.h"

namespace mp {
namespace ipc_internal {
namespace {

constexpr size_t kMessageLength = 40;      // Python's MESSAGE_LENGTH
constexpr size_t kMd5OnlyMessageLength = 20;
constexpr size_t kMd5DigestLength = 16;
constexpr size_t kMaxDigestNameLength = 8;  // len("sha3_256")

const EVP_MD* DigestByName(absl::string_view name) {
  if (name == "md5") return EVP_md5();
  if (name == "sha256") return EVP_sha256();
  if (name == "sha384") return EVP_sha384();
  if (name == "sha3_256") return EVP_sha3_256();
  if (name == "sha3_384") return EVP_sha3_384();
  return nullptr;
}

std::string Quote(absl::string_view bytes) {
  return absl::StrCat("b'", absl::CHexEscape(bytes.substr(0, 64)),
                      bytes.size() > 64 ? "...'" : "'");
}

// A handshake receive: errors other than EOF/timeouts become
// kUnauthenticated (an oversized or corrupt message is a protocol error).
absl::StatusOr<std::string> RecvHandshake(Connection& c, absl::Time deadline) {
  std::string message;
  absl::Status s = c.RecvBytesInto(&message, kHandshakeMaxLength, deadline);
  if (s.ok()) return message;
  switch (s.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      return absl::DeadlineExceededError(
          "authentication handshake timed out waiting for the peer");
    case absl::StatusCode::kOutOfRange:
      return absl::OutOfRangeError(absl::StrCat(
          "authentication handshake: the peer closed the connection (",
          s.message(), ")"));
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDataLoss:
      return absl::UnauthenticatedError(
          absl::StrCat("authentication handshake: ", s.message()));
    default:
      return s;
  }
}

}  // namespace

absl::StatusOr<DigestAndPayload> GetDigestNameAndPayload(
    absl::string_view message) {
  if (message.size() == kMd5OnlyMessageLength ||
      message.size() == kMd5DigestLength) {
    return DigestAndPayload{"", message};
  }
  if (absl::StartsWith(message, "{")) {
    // Python: message.find(b'}', 1, _MAX_DIGEST_LEN + 2)
    absl::string_view window = message.substr(0, kMaxDigestNameLength + 2);
    size_t curly = window.find('}', 1);
    if (curly != absl::string_view::npos) {
      absl::string_view digest = message.substr(1, curly - 1);
      if (DigestByName(digest) != nullptr) {
        return DigestAndPayload{std::string(digest), message.substr(curly + 1)};
      }
    }
  }
  return absl::UnauthenticatedError(absl::StrCat(
      "unsupported message length, missing digest prefix, or unsupported "
      "digest: message=",
      Quote(message)));
}

absl::StatusOr<std::string> Hmac(absl::string_view digest,
                                 absl::string_view key,
                                 absl::string_view data) {
  const EVP_MD* md = DigestByName(digest);
  if (md == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat("digest '", digest, "' unsupported"));
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  if (HMAC(md, key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           out, &out_len) == nullptr) {
    return absl::InternalError(absl::StrCat("HMAC-", digest, " failed"));
  }
  return std::string(reinterpret_cast<char*>(out), out_len);
}

absl::StatusOr<std::string> CreateResponse(absl::string_view authkey,
                                           absl::string_view message) {
  MP_ASSIGN_OR_RETURN(DigestAndPayload dp, GetDigestNameAndPayload(message));
  if (dp.digest.empty()) return Hmac("md5", authkey, message);
  MP_ASSIGN_OR_RETURN(std::string mac, Hmac(dp.digest, authkey, message));
  return absl::StrCat("{", dp.digest, "}", mac);
}

absl::Status VerifyChallenge(absl::string_view authkey,
                             absl::string_view message,
                             absl::string_view response) {
  MP_ASSIGN_OR_RETURN(DigestAndPayload dp, GetDigestNameAndPayload(response));
  std::string digest = dp.digest.empty() ? "md5" : dp.digest;
  MP_ASSIGN_OR_RETURN(std::string expected, Hmac(digest, authkey, message));
  if (expected.size() != dp.payload.size()) {
    return absl::UnauthenticatedError(
        absl::StrCat("expected '", digest, "' of length ", expected.size(),
                     " got ", dp.payload.size()));
  }
  if (CRYPTO_memcmp(expected.data(), dp.payload.data(), expected.size()) != 0) {
    return absl::UnauthenticatedError("digest received was wrong");
  }
  return absl::OkStatus();
}

absl::Status DeliverChallenge(Connection& c, absl::string_view authkey,
                              absl::Time deadline) {
  unsigned char random[kMessageLength];
  if (RAND_bytes(random, sizeof random) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  std::string message = absl::StrCat(
      "{sha256}",
      absl::string_view(reinterpret_cast<char*>(random), sizeof random));
  MP_RETURN_IF_ERROR(c.SendBytes(absl::StrCat(kChallenge, message)));
  MP_ASSIGN_OR_RETURN(std::string response, RecvHandshake(c, deadline));
  absl::Status verified = VerifyChallenge(authkey, message, response);
  if (!verified.ok()) {
    // Best effort, as in Python: the peer may already be gone.
    c.SendBytes(kFailure).IgnoreError();
    return absl::UnauthenticatedError(
        absl::StrCat("authentication failed: ", verified.message()));
  }
  return c.SendBytes(kWelcome);
}

absl::Status AnswerChallenge(Connection& c, absl::string_view authkey,
                             absl::Time deadline) {
  MP_ASSIGN_OR_RETURN(std::string message, RecvHandshake(c, deadline));
  if (!absl::StartsWith(message, kChallenge)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "protocol error, expected challenge: message=", Quote(message)));
  }
  absl::string_view challenge = absl::string_view(message).substr(kChallenge.size());
  if (challenge.size() < kMd5OnlyMessageLength) {
    return absl::UnauthenticatedError(
        absl::StrCat("challenge too short: ", challenge.size(), " bytes"));
  }
  MP_ASSIGN_OR_RETURN(std::string digest, CreateResponse(authkey, challenge));
  MP_RETURN_IF_ERROR(c.SendBytes(digest));
  MP_ASSIGN_OR_RETURN(std::string response, RecvHandshake(c, deadline));
  if (response != kWelcome) {
    return absl::UnauthenticatedError(
        "authentication failed: digest sent was rejected");
  }
  return absl::OkStatus();
}

}  // namespace ipc_internal
}  // namespace mp
