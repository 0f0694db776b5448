#include "ipc/connection.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ipc/internal/framing.h"
#include "process/fd.h"
#include "process/status_macros.h"

namespace mp {
namespace {

// Messages up to this size are read into a buffer sized up front; larger
// ones grow the buffer as bytes arrive (doubling), so a header that claims
// 1 TB allocates only about twice what the peer really sends.
constexpr size_t kPreallocateLimit = size_t{64} << 20;

// Read-ahead buffer size; reads of at least half of it bypass the buffer.
constexpr size_t kReadAheadSize = 64 << 10;

}  // namespace

Connection::Connection(UniqueFd fd, bool readable, bool writable)
    : fd_(std::move(fd)), readable_(readable), writable_(writable) {
  struct stat st;
  is_socket_ = fd_.valid() && ::fstat(fd_.get(), &st) == 0 &&
               S_ISSOCK(st.st_mode);
}

absl::Status Connection::CheckReadable() const {
  if (!fd_.valid()) return absl::FailedPreconditionError("connection is closed");
  if (!readable_) {
    return absl::FailedPreconditionError("connection is write-only");
  }
  return absl::OkStatus();
}

absl::Status Connection::CheckWritable() const {
  if (!fd_.valid()) return absl::FailedPreconditionError("connection is closed");
  if (!writable_) return absl::FailedPreconditionError("connection is read-only");
  return absl::OkStatus();
}

void Connection::BreakReading() {
  if (writable_) {
    readable_ = false;
  } else {
    fd_.reset();
    readable_ = false;
  }
}

absl::Status Connection::SendBytes(absl::string_view data) {
  MP_RETURN_IF_ERROR(CheckWritable());
  return ipc_internal::WriteFrame(fd_.get(), is_socket_, data);
}

absl::Status Connection::SendBytes(absl::string_view data, size_t offset,
                                   size_t size) {
  if (offset > data.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "offset ", offset, " is past the end of a ", data.size(),
        "-byte buffer"));
  }
  if (size == kNoMaxLength) size = data.size() - offset;
  if (size > data.size() - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "offset ", offset, " + size ", size, " exceeds the ", data.size(),
        "-byte buffer"));
  }
  return SendBytes(data.substr(offset, size));
}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    fd_ = std::move(other.fd_);
    readable_ = std::exchange(other.readable_, false);
    writable_ = std::exchange(other.writable_, false);
    is_socket_ = std::exchange(other.is_socket_, false);
    read_ahead_ = std::exchange(other.read_ahead_, false);
    read_buffer_ = std::move(other.read_buffer_);
    read_pos_ = std::exchange(other.read_pos_, 0);
    read_end_ = std::exchange(other.read_end_, 0);
    send_buffer_ = std::move(other.send_buffer_);
    recv_buffer_ = std::move(other.recv_buffer_);
    spin_ = other.spin_;
  }
  return *this;
}

size_t Connection::buffered() const { return read_end_ - read_pos_; }

absl::Status Connection::ReadExact(char* buf, size_t size, bool eof_ok_at_start,
                                   absl::Time deadline, size_t* got_out) {
  size_t got = std::min(size, buffered());
  if (got > 0) {
    std::memcpy(buf, read_buffer_.get() + read_pos_, got);
    read_pos_ += got;
  }
  *got_out = got;
  while (got < size) {
    // Spin only while waiting for a new message: once one has begun, the
    // rest is on its way from a sender that is writing (a large payload
    // streams in socket-buffer loads), and spinning there only competes
    // with the sender for a CPU.
    ipc_internal::ReadSpin* spin =
        eof_ok_at_start && got == 0 ? &spin_ : nullptr;
    if (!read_ahead_ || size - got >= kReadAheadSize / 2) {
      size_t more = 0;
      absl::Status s = ipc_internal::ReadFull(
          fd_.get(), buf + got, size - got, eof_ok_at_start && got == 0,
          deadline, &more, is_socket_, spin);
      *got_out = got + more;
      return s;
    }
    // Refill: one read of whatever is there, up to the buffer size.
    if (read_buffer_ == nullptr) read_buffer_.reset(new char[kReadAheadSize]);
    absl::StatusOr<size_t> n = ipc_internal::ReadSomeUntil(
        fd_.get(), read_buffer_.get(), kReadAheadSize, deadline, is_socket_,
        spin);
    if (!n.ok()) return n.status();
    if (*n == 0) {
      if (got == 0 && eof_ok_at_start) {
        return absl::OutOfRangeError(
            "end of file: the peer closed the connection");
      }
      return absl::DataLossError(absl::StrCat(
          "the peer closed the connection mid-message (", got, " of ", size,
          " bytes read)"));
    }
    read_end_ = *n;
    size_t take = std::min(size - got, *n);
    std::memcpy(buf + got, read_buffer_.get(), take);
    read_pos_ = take;
    got += take;
    *got_out = got;
  }
  return absl::OkStatus();
}

absl::Status Connection::ReadPayload(uint64_t size, std::string* out,
                                     absl::Time deadline) {
  size_t got = 0;
  if (size > out->max_size()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("message of ", size, " bytes is too large"));
  }
  if (size <= kPreallocateLimit || size <= out->capacity()) {
    out->resize(static_cast<size_t>(size));
    return ReadExact(&(*out)[0], out->size(), /*eof_ok_at_start=*/false,
                     deadline, &got);
  }
  out->clear();
  size_t have = 0;
  while (have < size) {
    size_t next = std::min<uint64_t>(size, std::max(have * 2, kPreallocateLimit));
    out->resize(next);
    absl::Status s = ReadExact(&(*out)[have], next - have,
                               /*eof_ok_at_start=*/false, deadline, &got);
    if (!s.ok()) {
      if (s.code() == absl::StatusCode::kDataLoss) {
        return absl::DataLossError(absl::StrCat(
            "the peer closed the connection mid-message (the header promised ",
            size, " bytes)"));
      }
      return s;
    }
    have = next;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Connection::ReadHeader(absl::Time deadline) {
  char header[ipc_internal::kLongHeaderSize];
  size_t got = 0;
  absl::Status s = ReadExact(header, 4, /*eof_ok_at_start=*/true, deadline, &got);
  if (!s.ok()) {
    // A clean EOF, or a timeout before any byte, leaves the stream in sync.
    bool in_sync = s.code() == absl::StatusCode::kOutOfRange ||
                   (s.code() == absl::StatusCode::kDeadlineExceeded && got == 0);
    if (!in_sync) BreakReading();
    return s;
  }
  absl::StatusOr<int64_t> size = ipc_internal::DecodeShortHeader(header);
  if (!size.ok()) {
    BreakReading();
    return size.status();
  }
  if (*size >= 0) return static_cast<uint64_t>(*size);
  s = ReadExact(header + 4, 8, /*eof_ok_at_start=*/false, deadline, &got);
  if (!s.ok()) {
    BreakReading();
    return s;
  }
  return ipc_internal::DecodeLongSize(header + 4);
}

absl::Status Connection::RecvBytesInto(std::string* out, size_t maxlength,
                                       absl::Time deadline) {
  MP_RETURN_IF_ERROR(CheckReadable());
  MP_ASSIGN_OR_RETURN(uint64_t size, ReadHeader(deadline));
  if (size > maxlength) {
    BreakReading();
    return absl::ResourceExhaustedError(absl::StrCat(
        "bad message length: ", size, " bytes exceed maxlength ", maxlength,
        "; the connection is no longer readable"));
  }
  absl::Status s = ReadPayload(size, out, deadline);
  if (!s.ok()) BreakReading();
  return s;
}

absl::StatusOr<std::string> Connection::RecvBytes(size_t maxlength) {
  std::string out;
  MP_RETURN_IF_ERROR(RecvBytesInto(&out, maxlength));
  return out;
}

absl::StatusOr<size_t> Connection::RecvBytesInto(absl::Span<char> buffer,
                                                 std::string* too_long) {
  MP_RETURN_IF_ERROR(CheckReadable());
  MP_ASSIGN_OR_RETURN(uint64_t size, ReadHeader(absl::InfiniteFuture()));
  if (size <= buffer.size()) {
    size_t got = 0;
    absl::Status s = ReadExact(buffer.data(), size, /*eof_ok_at_start=*/false,
                               absl::InfiniteFuture(), &got);
    if (!s.ok()) {
      BreakReading();
      return s;
    }
    return static_cast<size_t>(size);
  }
  // Python's BufferTooShort: the message is consumed and handed over.
  std::string local;
  std::string* whole = too_long != nullptr ? too_long : &local;
  absl::Status s = ReadPayload(size, whole, absl::InfiniteFuture());
  if (!s.ok()) {
    BreakReading();
    return s;
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "buffer too short: the message is ", size, " bytes, the buffer ",
      buffer.size()));
}

absl::StatusOr<bool> Connection::Poll(absl::Duration timeout) const {
  MP_RETURN_IF_ERROR(CheckReadable());
  if (buffered() > 0) return true;
  if (timeout > absl::ZeroDuration() && spin_.enabled()) {
    const absl::Time deadline = timeout == absl::InfiniteDuration()
                                    ? absl::InfiniteFuture()
                                    : absl::Now() + timeout;
    if (ipc_internal::SpinUntilReadable(fd_.get(), deadline, &spin_)) {
      return true;
    }
    if (deadline != absl::InfiniteFuture()) timeout = deadline - absl::Now();
  }
  return WaitReadable(fd_.get(), timeout);
}

void Connection::set_spin(absl::Duration spin) {
  spin = std::min(spin, kMaxSpin);
  spin_.Set(spin <= absl::ZeroDuration() ? 0 : absl::ToInt64Nanoseconds(spin));
}

absl::Status Connection::Close() {
  readable_ = writable_ = false;
  if (!fd_.valid()) return absl::OkStatus();
  return fd_.Close();
}

UniqueFd Connection::Release() {
  readable_ = writable_ = false;
  read_pos_ = read_end_ = 0;
  return std::move(fd_);
}

absl::StatusOr<std::pair<Connection, Connection>> Pipe(bool duplex) {
  if (duplex) {
    MP_ASSIGN_OR_RETURN(FdPair p, MakeSocketPair(SOCK_STREAM));
    std::pair<Connection, Connection> ends(Connection(std::move(p.read)),
                                           Connection(std::move(p.write)));
    ends.first.set_read_ahead(true);
    ends.second.set_read_ahead(true);
    return ends;
  }
  MP_ASSIGN_OR_RETURN(FdPair p, MakePipe());
  return std::make_pair(Connection(std::move(p.read), true, false),
                        Connection(std::move(p.write), false, true));
}

}  // namespace mp
