#include "process/fd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace mp {

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

absl::Status UniqueFd::Close() {
  if (fd_ < 0) return absl::OkStatus();
  int fd = release();
  if (::close(fd) != 0 && errno != EINTR) {
    return absl::ErrnoToStatus(errno, "close");
  }
  return absl::OkStatus();
}

absl::StatusOr<FdPair> MakePipe(int flags) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | flags) != 0) {
    return absl::ErrnoToStatus(errno, "pipe2");
  }
  return FdPair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

absl::StatusOr<FdPair> MakeSocketPair(int type) {
  int fds[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) != 0) {
    return absl::ErrnoToStatus(errno, "socketpair");
  }
  return FdPair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

namespace {

absl::StatusOr<bool> PollFor(int fd, short events, absl::Duration timeout) {
  const absl::Time deadline = timeout == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : absl::Now() + timeout;
  while (true) {
    int ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      absl::Duration left = deadline - absl::Now();
      if (left < absl::ZeroDuration()) left = absl::ZeroDuration();
      // Round up so that we never wake before the deadline.
      ms = static_cast<int>(
          std::min<int64_t>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))),
                            INT32_MAX));
    }
    struct pollfd p = {fd, events, 0};
    int n = ::poll(&p, 1, ms);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll");
    if (n == 0 && absl::Now() >= deadline) return false;
  }
}

// After write-like `call` on `fd` failed (errno set): OK to try again
// (EINTR; EAGAIN once `fd` is writable), else the error (`kOutOfRange` when
// the peer closed the connection).
absl::Status AfterFailedWrite(int fd, const char* call) {
  if (errno == EINTR) return absl::OkStatus();
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    return WaitWritable(fd, absl::InfiniteDuration()).status();
  }
  if (errno == EPIPE || errno == ECONNRESET) {
    return absl::OutOfRangeError(
        absl::StrCat(call, ": peer closed the connection"));
  }
  return absl::ErrnoToStatus(errno, call);
}

}  // namespace

absl::StatusOr<bool> WaitReadable(int fd, absl::Duration timeout) {
  return PollFor(fd, POLLIN, timeout);
}

absl::StatusOr<bool> WaitWritable(int fd, absl::Duration timeout) {
  return PollFor(fd, POLLOUT, timeout);
}

absl::Status WriteAll(int fd, absl::string_view data) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n >= 0) {
      p += n;
      left -= static_cast<size_t>(n);
      continue;
    }
    absl::Status again = AfterFailedWrite(fd, "write");
    if (!again.ok()) return again;
  }
  return absl::OkStatus();
}

absl::Status ReadExact(int fd, void* buf, size_t size, size_t* got) {
  char* p = static_cast<char*>(buf);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd, p + done, size - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      if (got != nullptr) *got = done;
      return absl::OutOfRangeError(
          done == 0 ? "read: end of file"
                    : "read: end of file in the middle of a message");
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      absl::StatusOr<bool> ready = WaitReadable(fd, absl::InfiniteDuration());
      if (!ready.ok()) return ready.status();
      continue;
    }
    if (got != nullptr) *got = done;
    if (errno == ECONNRESET) {
      return absl::OutOfRangeError("read: connection reset by peer");
    }
    return absl::ErrnoToStatus(errno, "read");
  }
  if (got != nullptr) *got = done;
  return absl::OkStatus();
}

absl::StatusOr<size_t> ReadSome(int fd, void* buf, size_t size) {
  while (true) {
    ssize_t n = ::read(fd, buf, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    return absl::ErrnoToStatus(errno, "read");
  }
}

absl::Status SetNonBlocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return absl::ErrnoToStatus(errno, "fcntl(F_GETFL)");
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) != 0) {
    return absl::ErrnoToStatus(errno, "fcntl(F_SETFL)");
  }
  return absl::OkStatus();
}

absl::Status SetCloseOnExec(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return absl::ErrnoToStatus(errno, "fcntl(F_GETFD)");
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (::fcntl(fd, F_SETFD, flags) != 0) {
    return absl::ErrnoToStatus(errno, "fcntl(F_SETFD)");
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> DupCloexec(int fd) {
  int n = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (n < 0) return absl::ErrnoToStatus(errno, "fcntl(F_DUPFD_CLOEXEC)");
  return UniqueFd(n);
}

namespace {

// Room for the control message that carries one fd.
struct OneFdControl {
  alignas(struct cmsghdr) char bytes[CMSG_SPACE(sizeof(int))];
};

// A msghdr for one buffer and `control`.
struct msghdr OneBufferMessage(struct iovec* iov, OneFdControl* control) {
  struct msghdr msg;
  std::memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control->bytes;
  msg.msg_controllen = sizeof control->bytes;
  return msg;
}

}  // namespace

absl::Status SendWithFd(int sock, absl::string_view data, int fd) {
  if (data.empty()) return absl::InvalidArgumentError("SendWithFd: no data");
  struct iovec iov = {const_cast<char*>(data.data()), data.size()};
  OneFdControl control;
  std::memset(control.bytes, 0, sizeof control.bytes);
  struct msghdr msg = OneBufferMessage(&iov, &control);
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t n;
  for (;;) {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n >= 0) break;
    absl::Status again = AfterFailedWrite(sock, "sendmsg");
    if (!again.ok()) return again;
  }
  data.remove_prefix(static_cast<size_t>(n));  // the fd went with the first byte
  return WriteAll(sock, data);
}

ssize_t ReceiveWithFd(int sock, void* buf, size_t size, UniqueFd* fd) {
  struct iovec iov = {buf, size};
  OneFdControl control;
  struct msghdr msg = OneBufferMessage(&iov, &control);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return n;
  // With room for one fd, the kernel closes the rest (MSG_CTRUNC).
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
       c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int got;
      std::memcpy(&got, CMSG_DATA(c), sizeof(int));
      fd->reset(got);
    }
  }
  return n;
}

}  // namespace mp
