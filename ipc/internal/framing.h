// -----------------------------------------------------------------------------
// File: ipc/internal/framing.h
// -----------------------------------------------------------------------------
//
// The message framing of CPython's `multiprocessing.connection` on Unix, and
// the raw reads and writes under `mp::Connection`:
//
//   payload <= 0x7fffffff bytes:  size:i32 big-endian, payload
//   larger payloads:              0xffffffff (-1), size:u64 big-endian, payload
//
// A negative 4-byte size other than -1 is corrupt (CPython would read it as
// an empty message and lose sync; mp reports kDataLoss).

#ifndef MP_IPC_INTERNAL_FRAMING_H_
#define MP_IPC_INTERNAL_FRAMING_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mp {
namespace ipc_internal {

inline constexpr size_t kShortHeaderSize = 4;
inline constexpr size_t kLongHeaderSize = 12;
inline constexpr uint64_t kMaxShortFrame = 0x7fffffff;

// Writes the header for a `size`-byte payload to `out` (room for 12 bytes);
// returns its length, 4 or 12.
size_t EncodeFrameHeader(uint64_t size, char* out);

// Parses the first 4 header bytes. Returns the payload size, or -1 when the
// 8-byte extended size follows. Errors: kDataLoss for other negative sizes.
absl::StatusOr<int64_t> DecodeShortHeader(const char* four_bytes);

// Parses the 8-byte big-endian extended size.
uint64_t DecodeLongSize(const char* eight_bytes);

// Writes header + payload with one writev/sendmsg when possible, continuing
// short writes and EINTR. `is_socket`: use sendmsg(MSG_NOSIGNAL); otherwise
// SIGPIPE is blocked around the write and a SIGPIPE it raised is consumed,
// so a closed reader gives an error, not a signal. Errors: kOutOfRange when
// the peer closed (EPIPE/ECONNRESET), the errno otherwise.
absl::Status WriteFrame(int fd, bool is_socket, absl::string_view payload);

// Reads exactly `size` bytes. Returns kOutOfRange ("end of file") when EOF
// comes before the first byte and `eof_ok_at_start`, kDataLoss when it comes
// later ("peer closed mid-message"), kDeadlineExceeded when `deadline`
// passes first, the errno otherwise. `*got` (when given) receives the number
// of bytes read, also on error.
absl::Status ReadFull(int fd, char* buf, size_t size, bool eof_ok_at_start,
                      absl::Time deadline, size_t* got = nullptr);

// One read(2) of at most `size` bytes, waiting until `deadline` for data.
// Returns the count, 0 at end of file. Errors: kDeadlineExceeded, kOutOfRange
// for ECONNRESET, the errno otherwise.
absl::StatusOr<size_t> ReadSomeUntil(int fd, char* buf, size_t size,
                                     absl::Time deadline);

}  // namespace ipc_internal
}  // namespace mp

#endif  // MP_IPC_INTERNAL_FRAMING_H_
