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
#include "process/spin.h"

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

// ReadSpin: the spin-then-block state of one connection's receives (see
// `Connection::set_spin()`). Before a receive sleeps in the kernel it first
// polls the fd without sleeping for up to `budget_ns`. The budget adapts,
// like an adaptive mutex's:
//   * data found while spinning doubles it, up to `max_ns`;
//   * a spin that ran out (the receive then slept), or that found data only
//     after overrunning its budget (it was preempted), divides it by 4,
//     down to off (below 1 us). On an overloaded machine (more runnable
//     processes than CPUs) a spinning peer waits for a time slice where a
//     sleeping one would be woken at once, so spinning must stop there;
//   * while off, `probe_after` waits in a row no longer than `max_ns`
//     (spinning would probably pay again) turn it back on at `max_ns / 4`.
//     Each probe that fails doubles `probe_after` (4 to 1024); a spin that
//     finds its data in time resets it.
struct ReadSpin {
  static constexpr int32_t kFirstProbeAfter = 4;
  static constexpr int32_t kMaxProbeAfter = 1024;
  int64_t max_ns = 0;       // 0: never spin
  int64_t budget_ns = 0;    // current budget, 0..max_ns
  int32_t short_waits = 0;  // short waits in a row while off
  int32_t probe_after = kFirstProbeAfter;
  void Set(int64_t max) {
    max_ns = max > 0 ? max : 0;
    budget_ns = max_ns;
    short_waits = 0;
    probe_after = kFirstProbeAfter;
  }
  // Whether a receive may spin at all: max_ns > 0 and mp::SpinAllowed()
  // (process/spin.h: more than one CPU; with one, spinning only delays the
  // peer).
  bool enabled() const { return max_ns > 0 && ::mp::SpinAllowed(); }
  // After data was found while spinning: `in_time` when within the budget.
  void Spun(bool in_time);
  // After a receive slept: `waited_ns` from the first empty poll to the
  // data; `spun` when it had spun first (and ran out).
  void Slept(bool spun, int64_t waited_ns);
};

// SpinUntilReadable()
//
// Polls `fd` (poll(2) with a zero timeout, a pause between tries) until it
// is readable (data, EOF or an error the next read reports), for up to
// `spin->budget_ns` and not past `deadline`. Returns true when readable.
// Adapts the budget when the fd became readable while spinning. Does
// nothing (false) when spinning is disabled.
bool SpinUntilReadable(int fd, absl::Time deadline, ReadSpin* spin);

// Reads exactly `size` bytes. Returns kOutOfRange ("end of file") when EOF
// comes before the first byte and `eof_ok_at_start`, kDataLoss when it comes
// later ("peer closed mid-message"), kDeadlineExceeded when `deadline`
// passes first, the errno otherwise. `*got` (when given) receives the number
// of bytes read, also on error.
//
// With `spin` (enabled), a read that would block first spins (see
// `ReadSpin`): on a socket with recv(MSG_DONTWAIT) straight into `buf`, so
// a message that arrives while spinning costs no extra system call; on a
// pipe with poll(2). Errors and results are the same with or without it.
absl::Status ReadFull(int fd, char* buf, size_t size, bool eof_ok_at_start,
                      absl::Time deadline, size_t* got = nullptr,
                      bool is_socket = false, ReadSpin* spin = nullptr);

// One read(2) of at most `size` bytes, waiting until `deadline` for data.
// Returns the count, 0 at end of file. Errors: kDeadlineExceeded, kOutOfRange
// for ECONNRESET, the errno otherwise. `is_socket` and `spin` as for
// ReadFull.
absl::StatusOr<size_t> ReadSomeUntil(int fd, char* buf, size_t size,
                                     absl::Time deadline,
                                     bool is_socket = false,
                                     ReadSpin* spin = nullptr);

}  // namespace ipc_internal
}  // namespace mp

#endif  // MP_IPC_INTERNAL_FRAMING_H_
