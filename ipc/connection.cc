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

absl::Status ReadPayload(int fd, uint64_t size, std::string* out,
                         absl::Time deadline) {
  if (size > out->max_size()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("message of ", size, " bytes is too large"));
  }
  if (size <= kPreallocateLimit || size <= out->capacity()) {
    out->resize(static_cast<size_t>(size));
    return ipc_internal::ReadFull(fd, &(*out)[0], out->size(),
                                  /*eof_ok_at_start=*/false, deadline);
  }
  out->clear();
  size_t got = 0;
  while (got < size) {
    size_t next = std::min<uint64_t>(size, std::max(got * 2, kPreallocateLimit));
    out->resize(next);
    absl::Status s = ipc_internal::ReadFull(fd, &(*out)[got], next - got,
                                            /*eof_ok_at_start=*/false, deadline);
    if (!s.ok()) {
      if (s.code() == absl::StatusCode::kDataLoss) {
        return absl::DataLossError(absl::StrCat(
            "the peer closed the connection mid-message (the header promised ",
            size, " bytes)"));
      }
      return s;
    }
    got = next;
  }
  return absl::OkStatus();
}

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

absl::StatusOr<uint64_t> Connection::ReadHeader(absl::Time deadline) {
  char header[ipc_internal::kLongHeaderSize];
  size_t got = 0;
  absl::Status s = ipc_internal::ReadFull(fd_.get(), header, 4,
                                          /*eof_ok_at_start=*/true, deadline,
                                          &got);
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
  s = ipc_internal::ReadFull(fd_.get(), header + 4, 8,
                             /*eof_ok_at_start=*/false, deadline);
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
  absl::Status s = ReadPayload(fd_.get(), size, out, deadline);
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
    absl::Status s =
        ipc_internal::ReadFull(fd_.get(), buffer.data(), size,
                               /*eof_ok_at_start=*/false, absl::InfiniteFuture());
    if (!s.ok()) {
      BreakReading();
      return s;
    }
    return static_cast<size_t>(size);
  }
  // Python's BufferTooShort: the message is consumed and handed over.
  std::string local;
  std::string* whole = too_long != nullptr ? too_long : &local;
  absl::Status s = ReadPayload(fd_.get(), size, whole, absl::InfiniteFuture());
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
  return WaitReadable(fd_.get(), timeout);
}

absl::Status Connection::Close() {
  readable_ = writable_ = false;
  if (!fd_.valid()) return absl::OkStatus();
  return fd_.Close();
}

UniqueFd Connection::Release() {
  readable_ = writable_ = false;
  return std::move(fd_);
}

absl::StatusOr<std::pair<Connection, Connection>> Pipe(bool duplex) {
  if (duplex) {
    MP_ASSIGN_OR_RETURN(FdPair p, MakeSocketPair(SOCK_STREAM));
    return std::make_pair(Connection(std::move(p.read)),
                          Connection(std::move(p.write)));
  }
  MP_ASSIGN_OR_RETURN(FdPair p, MakePipe());
  return std::make_pair(Connection(std::move(p.read), true, false),
                        Connection(std::move(p.write), false, true));
}

}  // namespace mp
