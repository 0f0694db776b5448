// -----------------------------------------------------------------------------
// File: ipc/connection.h
// -----------------------------------------------------------------------------
//
// `mp::Connection` sends and receives whole messages over a socket or pipe
// (Python: `multiprocessing.connection.Connection`), and `mp::Pipe()` makes a
// connected pair (Python: `multiprocessing.Pipe`).
//
//   absl::StatusOr<std::pair<mp::Connection, mp::Connection>> p = mp::Pipe();
//   auto& [parent, child] = *p;
//   // ... fork; the child sends:
//   MP_RETURN_IF_ERROR(child.Send(std::vector<int>{1, 2, 3}));
//   // the parent receives:
//   absl::StatusOr<std::vector<int>> v = parent.Recv<std::vector<int>>();
//
// Typed messages go through the codec (`ipc/codec.h`); `SendBytes` and
// `RecvBytes` carry raw bytes. The framing is CPython's, byte for byte (a
// 4-byte big-endian signed length, or -1 and an 8-byte length for payloads
// over 2^31-1 bytes), so a Python peer can `send_bytes`/`recv_bytes` with an
// mp Connection. (Python's `send`/`recv` pickle; mp's use its codec, so
// typed messages only work between mp ends.)
//
// Errors every receive can return:
//   * `kOutOfRange`: end of file, the peer closed (Python's `EOFError`). A
//     send to a closed peer returns it too (never SIGPIPE).
//   * `kDataLoss`: the peer closed in the middle of a message, or a corrupt
//     header; the connection is then unusable for receiving.
//   * `kFailedPrecondition`: the connection is closed, or not readable
//     (writable) for a receive (send).
//
// Thread safety: like Python's, a Connection is not thread-safe; but one
// thread may send while another receives. After fork() both processes hold
// the fds: a connection with read-ahead (see `set_read_ahead()`) must be read
// in one process only; without it, processes may take turns under a lock.
//
// Latency: a receive that would block first spins for up to 50 us (polling
// the fd without sleeping; adaptive, never on a 1-CPU machine), which saves
// the kernel's wake-up of a sleeping process when the peer answers quickly.
// See `set_spin()`.

#ifndef MP_IPC_CONNECTION_H_
#define MP_IPC_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "ipc/codec.h"
#include "ipc/internal/framing.h"
#include "process/fd.h"

namespace mp {

class Connection {
 public:
  static constexpr size_t kNoMaxLength = std::numeric_limits<size_t>::max();
  // The spin budget of a new connection (see `set_spin()`).
  static constexpr absl::Duration kDefaultSpin = absl::Microseconds(50);
  // The longest spin `set_spin()` accepts.
  static constexpr absl::Duration kMaxSpin = absl::Milliseconds(10);

  // A closed connection.
  Connection() = default;

  // Connection::Connection()
  //
  // Takes ownership of `fd` (a socket or one end of a pipe). Python:
  // `Connection(handle, readable, writable)`.
  explicit Connection(UniqueFd fd, bool readable = true, bool writable = true);

  Connection(Connection&& other) noexcept { *this = std::move(other); }
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() = default;

  // Connection::Send()
  //
  // Encodes `value` with the codec and sends it as one message. Python:
  // `send(obj)`.
  template <typename T>
  absl::Status Send(const T& value) {
    send_buffer_.clear();
    EncodeTo(value, &send_buffer_);
    absl::Status s = SendBytes(send_buffer_);
    TrimBuffer(&send_buffer_);
    return s;
  }

  // Connection::Recv()
  //
  // Receives one message and decodes it as a `T`. The message is consumed
  // even when it does not decode (kDataLoss or kInvalidArgument from the
  // codec); the connection stays usable. Python: `recv()`.
  template <typename T>
  absl::StatusOr<T> Recv() {
    static_assert(!std::is_same<T, absl::Status>::value,
                  "Recv<absl::Status> is ambiguous (see mp::Decode); receive "
                  "an absl::StatusOr<T> or a std::tuple<absl::Status>");
    absl::Status s = RecvBytesInto(&recv_buffer_);
    if (!s.ok()) return s;
    T value{};
    s = DecodeInto(recv_buffer_, &value);
    TrimBuffer(&recv_buffer_);
    if (!s.ok()) return s;
    return value;
  }

  // Connection::SendBytes()
  //
  // Sends `data` (or `size` bytes of it from `offset`; Python's
  // `send_bytes(buf, offset, size)`) as one message: one writev/sendmsg call
  // for header and payload. Errors: kInvalidArgument when offset/size lie
  // outside `data`; kOutOfRange when the peer is gone.
  absl::Status SendBytes(absl::string_view data);
  absl::Status SendBytes(absl::string_view data, size_t offset,
                         size_t size = kNoMaxLength);

  // Connection::RecvBytes()
  //
  // Receives one message. Python: `recv_bytes(maxlength)`. A message longer
  // than `maxlength` gives kResourceExhausted before anything is allocated,
  // and the connection is then unusable for receiving (its payload is still
  // in the stream), as in Python.
  absl::StatusOr<std::string> RecvBytes(size_t maxlength = kNoMaxLength);

  // Connection::RecvBytesInto()
  //
  // Receives one message into `*out`, replacing its contents but reusing its
  // capacity: no allocation when the buffer is large enough. Same errors as
  // `RecvBytes()`. `deadline` bounds the wait (kDeadlineExceeded: when no
  // byte had arrived the connection stays usable; if it passes mid-message
  // the connection becomes unusable for receiving).
  absl::Status RecvBytesInto(std::string* out, size_t maxlength = kNoMaxLength,
                             absl::Time deadline = absl::InfiniteFuture());

  // Connection::RecvBytesInto()
  //
  // Receives one message into `buffer` and returns its length. Python:
  // `recv_bytes_into(buf)`. When the message is longer than `buffer`
  // (Python's `BufferTooShort`), returns kResourceExhausted and, when
  // `too_long` is given, hands over the whole message there; nothing is
  // written to `buffer` and the connection stays usable.
  absl::StatusOr<size_t> RecvBytesInto(absl::Span<char> buffer,
                                       std::string* too_long = nullptr);

  // Connection::Poll()
  //
  // Whether data (or EOF) is available to read, waiting up to `timeout`
  // (zero: just check; `absl::InfiniteDuration()`: wait). Python: `poll()`.
  absl::StatusOr<bool> Poll(absl::Duration timeout = absl::ZeroDuration()) const;

  // Connection::Close()
  //
  // Closes the fd; further use gives kFailedPrecondition. Idempotent.
  absl::Status Close();

  // The fd, or -1 when closed. Python: `fileno()`.
  int fileno() const { return fd_.get(); }
  bool closed() const { return !fd_.valid(); }
  bool readable() const { return readable_; }
  bool writable() const { return writable_; }

  // Connection::Release()
  //
  // Gives up the fd without closing it (e.g. to hand it to a child). Bytes
  // already read ahead (see `set_read_ahead()`) are dropped.
  UniqueFd Release();

  // Connection::set_read_ahead()
  //
  // With read-ahead, a receive reads whatever is available (up to 64 KiB)
  // in one call and keeps the surplus for the next receive: one read(2) per
  // small message instead of two (header, then payload). Off by default,
  // and for `Pipe(false)`: then a receive reads exactly one frame, so several
  // processes may share the fd (taking turns under a lock, as Python's Queue
  // does). On for `Pipe(true)` ends and for `Listener`/`Client` connections,
  // which must then be read by one process only. `Poll()` and `Wait()` see
  // read-ahead bytes. Turning it off keeps bytes already read ahead.
  void set_read_ahead(bool on) { read_ahead_ = on; }
  bool read_ahead() const { return read_ahead_; }
  // Bytes read ahead and not yet received.
  size_t buffered() const;

  // Connection::set_spin()
  //
  // Spin-then-block receiving (adaptive polling). A receive (`Recv*`, or a
  // `Poll()` with a positive timeout) that finds no new message first polls
  // the fd without sleeping -- on a socket with nonblocking `recv()` straight
  // into the destination, on a pipe with a zero-timeout `poll()`, a CPU pause
  // between tries -- for up to `spin`, and only then sleeps in the kernel as
  // before. Waits for the rest of a message that has begun do not spin (its
  // sender is streaming it). When the peer answers within the spin (a
  // request/reply ping-pong), the reply costs no sleep and no wake-up of
  // this process: an 8-byte round trip between two mp ends on two idle
  // cores drops from ~14 us to ~5 us on a 2-core VM.
  //
  // The price is CPU: up to the budget of busy polling per receive that
  // waits. The budget adapts per connection, like an adaptive mutex's: data
  // found while spinning doubles it (up to `spin`); a spin that ran out, or
  // found its data only after overrunning the budget (it was preempted: the
  // machine is overloaded), divides it by 4, down to off; while off, a run
  // of short waits (4, doubling after each failed probe, up to 1024) turns it
  // back on at `spin / 4`. A process allowed only one CPU
  // (sched_getaffinity, read once per process) never spins: there, spinning
  // only delays the peer. Timeouts, EOF and errors are exactly as without
  // spinning; `mp::Wait()` never spins. Default `kDefaultSpin` (50 us); zero
  // or negative disables; at most `kMaxSpin` (10 ms). Disable it for
  // connections that mostly wait long, or where CPU matters more than
  // latency.
  void set_spin(absl::Duration spin);
  absl::Duration spin() const { return absl::Nanoseconds(spin_.max_ns); }

 private:
  absl::Status CheckReadable() const;
  absl::Status CheckWritable() const;
  // Reads exactly `size` bytes (from the read-ahead buffer first); `*got`
  // counts them, also on error. Errors as ipc_internal::ReadFull.
  absl::Status ReadExact(char* buf, size_t size, bool eof_ok_at_start,
                         absl::Time deadline, size_t* got);
  // Reads a payload of `size` bytes into `*out`, growing it as bytes arrive
  // when `size` is huge.
  absl::Status ReadPayload(uint64_t size, std::string* out,
                           absl::Time deadline);
  // Reads a header; returns the payload size.
  absl::StatusOr<uint64_t> ReadHeader(absl::Time deadline);
  // Marks the stream out of sync after a failed receive (Python closes a
  // connection that is not writable).
  void BreakReading();
  // Frees a scratch buffer that grew past 16 MiB (one huge message should
  // not pin its memory for the connection's life).
  static void TrimBuffer(std::string* buffer) {
    if (buffer->capacity() > (size_t{16} << 20)) std::string().swap(*buffer);
  }

  UniqueFd fd_;
  bool readable_ = false;
  bool writable_ = false;
  bool is_socket_ = false;
  bool read_ahead_ = false;
  std::unique_ptr<char[]> read_buffer_;  // kReadAheadSize bytes, lazily
  size_t read_pos_ = 0;
  size_t read_end_ = 0;
  std::string send_buffer_;
  std::string recv_buffer_;
  // Spin-then-block state (Poll() adapts it too, hence mutable).
  mutable ipc_internal::ReadSpin spin_ = DefaultSpin();
  static ipc_internal::ReadSpin DefaultSpin() {
    ipc_internal::ReadSpin s;
    s.Set(absl::ToInt64Nanoseconds(kDefaultSpin));
    return s;
  }
};

// Pipe()
//
// A connected pair. `duplex` (Python's default): a socketpair, both ends
// read and write, with read-ahead on (each end is read by one process).
// Otherwise an os pipe: `first` only receives (exact reads, so it may be
// shared), `second` only sends. Both fds are close-on-exec.
absl::StatusOr<std::pair<Connection, Connection>> Pipe(bool duplex = true);

}  // namespace mp

#endif  // MP_IPC_CONNECTION_H_
