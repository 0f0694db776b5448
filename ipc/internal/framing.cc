#include "ipc/internal/framing.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace mp {
namespace ipc_internal {
namespace {

void PutBigEndian32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(v >> (24 - 8 * i));
}
void PutBigEndian64(uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (56 - 8 * i));
}

bool IsPeerGone(int err) { return err == EPIPE || err == ECONNRESET; }

absl::Status WriteError(int err, const char* what) {
  if (IsPeerGone(err)) {
    return absl::OutOfRangeError(
        absl::StrCat(what, ": the peer closed the connection (",
                     std::strerror(err), ")"));
  }
  return absl::ErrnoToStatus(err, what);
}

// Waits for `events` on `fd` until `deadline`. Returns false on timeout.
absl::StatusOr<bool> PollUntil(int fd, short events, absl::Time deadline) {
  while (true) {
    int timeout_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        timeout_ms = 0;
      } else {
        timeout_ms = static_cast<int>(
            std::min<int64_t>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))),
                              1 << 30));
      }
    }
    pollfd p = {fd, events, 0};
    int n = ::poll(&p, 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "poll");
    }
    if (n > 0) return true;
    if (timeout_ms == 0 || absl::Now() >= deadline) return false;
  }
}

// Blocks SIGPIPE for the calling thread for the life of the object; if a
// SIGPIPE raised meanwhile (not one already pending) is pending at the end,
// consumes it.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_);
  }
  void ConsumeRaised() {
    if (was_pending_) return;
    const timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set_, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  ~ScopedSigpipeBlock() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t pipe_set_;
  sigset_t old_;
  bool was_pending_ = false;
};

// Waits until `fd` is readable. Errors: kDeadlineExceeded when `deadline`
// passes first, poll's errno.
absl::Status WaitReadableUntil(int fd, absl::Time deadline) {
  absl::StatusOr<bool> ready = PollUntil(fd, POLLIN, deadline);
  if (!ready.ok()) return ready.status();
  if (!*ready) {
    return absl::DeadlineExceededError(
        "timed out waiting for the peer's message");
  }
  return absl::OkStatus();
}

ssize_t WriteVec(int fd, bool is_socket, iovec* iov, int iovcnt) {
  if (is_socket) {
    msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  }
  return ::writev(fd, iov, iovcnt);
}

absl::Status WriteFrameImpl(int fd, bool is_socket, absl::string_view payload,
                            ScopedSigpipeBlock* block) {
  char header[kLongHeaderSize];
  size_t header_size = EncodeFrameHeader(payload.size(), header);
  iovec iov[2];
  iov[0] = {header, header_size};
  iov[1] = {const_cast<char*>(payload.data()), payload.size()};
  int first = 0;
  int count = payload.empty() ? 1 : 2;
  while (first < count) {
    ssize_t n = WriteVec(fd, is_socket, iov + first, count - first);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        absl::StatusOr<bool> ready = PollUntil(fd, POLLOUT, absl::InfiniteFuture());
        if (!ready.ok()) return ready.status();
        continue;
      }
      if (err == EPIPE && block != nullptr) block->ConsumeRaised();
      return WriteError(err, is_socket ? "sendmsg" : "writev");
    }
    size_t done = static_cast<size_t>(n);
    while (first < count && done >= iov[first].iov_len) {
      done -= iov[first].iov_len;
      ++first;
    }
    if (first < count) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + done;
      iov[first].iov_len -= done;
    }
  }
  return absl::OkStatus();
}

}  // namespace

size_t EncodeFrameHeader(uint64_t size, char* out) {
  if (size <= kMaxShortFrame) {
    PutBigEndian32(static_cast<uint32_t>(size), out);
    return kShortHeaderSize;
  }
  PutBigEndian32(0xffffffffu, out);
  PutBigEndian64(size, out + 4);
  return kLongHeaderSize;
}

absl::StatusOr<int64_t> DecodeShortHeader(const char* four_bytes) {
  uint32_t u = 0;
  for (int i = 0; i < 4; ++i) {
    u = (u << 8) | static_cast<unsigned char>(four_bytes[i]);
  }
  int32_t size = static_cast<int32_t>(u);
  if (size < -1) {
    return absl::DataLossError(
        absl::StrCat("corrupt message header: negative length ", size));
  }
  return size;
}

uint64_t DecodeLongSize(const char* eight_bytes) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8) | static_cast<unsigned char>(eight_bytes[i]);
  }
  return v;
}

absl::Status WriteFrame(int fd, bool is_socket, absl::string_view payload) {
  if (is_socket) return WriteFrameImpl(fd, true, payload, nullptr);
  ScopedSigpipeBlock block;
  return WriteFrameImpl(fd, false, payload, &block);
}

absl::Status ReadFull(int fd, char* buf, size_t size, bool eof_ok_at_start,
                      absl::Time deadline, size_t* got_out) {
  size_t got = 0;
  size_t ignored;
  if (got_out == nullptr) got_out = &ignored;
  *got_out = 0;
  while (got < size) {
    absl::StatusOr<size_t> n = ReadSomeUntil(fd, buf + got, size - got, deadline);
    if (!n.ok()) return n.status();
    if (*n == 0) {
      if (got == 0 && eof_ok_at_start) {
        return absl::OutOfRangeError("end of file: the peer closed the connection");
      }
      return absl::DataLossError(absl::StrCat(
          "the peer closed the connection mid-message (", got, " of ", size,
          " bytes read)"));
    }
    got += *n;
    *got_out = got;
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> ReadSomeUntil(int fd, char* buf, size_t size,
                                     absl::Time deadline) {
  while (true) {
    if (deadline != absl::InfiniteFuture()) {
      absl::Status ready = WaitReadableUntil(fd, deadline);
      if (!ready.ok()) return ready;
    }
    // Linux reads at most 0x7ffff000 bytes per call anyway.
    ssize_t n = ::read(fd, buf, std::min<size_t>(size, 0x7ffff000));
    if (n >= 0) return static_cast<size_t>(n);
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      absl::Status ready = WaitReadableUntil(fd, deadline);
      if (!ready.ok()) return ready;
      continue;
    }
    if (err == ECONNRESET) {
      return absl::OutOfRangeError("end of file: connection reset by peer");
    }
    return absl::ErrnoToStatus(err, "read");
  }
}

}  // namespace ipc_internal
}  // namespace mp
