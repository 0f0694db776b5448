// -----------------------------------------------------------------------------
// File: ipc/internal/auth.h
// -----------------------------------------------------------------------------
//
// CPython's `multiprocessing.connection` challenge/response authentication,
// byte for byte (3.12's `deliver_challenge`/`answer_challenge`, which also
// interoperate with 3.11 and older peers):
//
//   server -> client  "#CHALLENGE#" + "{sha256}" + 40 random bytes
//   client -> server  "{sha256}" + HMAC-SHA256(authkey, "{sha256}" + random)
//                     (to a legacy 20-byte challenge, and from a 3.11 client:
//                     the raw 16-byte HMAC-MD5 of the whole challenge)
//   server -> client  "#WELCOME#" or "#FAILURE#"
//
// Then the roles swap (mutual authentication). Every handshake message is
// read with maxlength 256; MACs come from libcrypto and are compared with
// CRYPTO_memcmp.

#ifndef MP_IPC_INTERNAL_AUTH_H_
#define MP_IPC_INTERNAL_AUTH_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ipc/connection.h"

namespace mp {
namespace ipc_internal {

inline constexpr absl::string_view kChallenge = "#CHALLENGE#";
inline constexpr absl::string_view kWelcome = "#WELCOME#";
inline constexpr absl::string_view kFailure = "#FAILURE#";
inline constexpr size_t kHandshakeMaxLength = 256;

// Python's `_get_digest_name_and_payload`: a 16- or 20-byte message is
// legacy (digest "" = md5, no prefix); otherwise it must start with
// "{name}" for an allowed name (md5, sha256, sha384, sha3_256, sha3_384).
struct DigestAndPayload {
  std::string digest;  // "" for legacy
  absl::string_view payload;
};
absl::StatusOr<DigestAndPayload> GetDigestNameAndPayload(
    absl::string_view message);

// HMAC of `data` with `digest` ("md5", "sha256", ... Python's names).
absl::StatusOr<std::string> Hmac(absl::string_view digest,
                                 absl::string_view key, absl::string_view data);

// Python's `_create_response`.
absl::StatusOr<std::string> CreateResponse(absl::string_view authkey,
                                           absl::string_view message);

// Python's `_verify_challenge`: kUnauthenticated when the response is wrong.
absl::Status VerifyChallenge(absl::string_view authkey,
                             absl::string_view message,
                             absl::string_view response);

// Python's `deliver_challenge` / `answer_challenge`, bounded by `deadline`.
// Errors: kUnauthenticated (wrong key, protocol violation, oversized
// message), kDeadlineExceeded, kOutOfRange (the peer closed).
absl::Status DeliverChallenge(Connection& connection, absl::string_view authkey,
                              absl::Time deadline);
absl::Status AnswerChallenge(Connection& connection, absl::string_view authkey,
                             absl::Time deadline);

}  // namespace ipc_internal
}  // namespace mp

#endif  // MP_IPC_INTERNAL_AUTH_H_
