// -----------------------------------------------------------------------------
// File: process/fd.h
// -----------------------------------------------------------------------------
//
// `mp::UniqueFd` owns a file descriptor and closes it when destroyed, like
// `std::unique_ptr` for fds. The free functions here are the small fallible
// fd operations that the rest of mp builds on; every fd they create is
// close-on-exec.
//
//   absl::StatusOr<mp::FdPair> p = mp::MakePipe();
//   if (!p.ok()) return p.status();
//   MP_RETURN_IF_ERROR(mp::WriteAll(p->write.get(), "hello"));
//   std::string buf(5, '\0');
//   MP_RETURN_IF_ERROR(mp::ReadExact(p->read.get(), buf.data(), buf.size()));
//
// All reads and writes retry on EINTR; short reads and writes are continued.

#ifndef MP_PROCESS_FD_H_
#define MP_PROCESS_FD_H_

#include <sys/types.h>

#include <cstddef>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mp {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // UniqueFd::release()
  //
  // Gives up ownership without closing; returns the fd (or -1).
  int release() { return std::exchange(fd_, -1); }

  // UniqueFd::reset()
  //
  // Closes the owned fd, if any (errors ignored, EINTR not retried: on Linux
  // the fd is closed either way), and takes ownership of `fd`.
  void reset(int fd = -1) noexcept;

  // UniqueFd::Close()
  //
  // Closes the fd and reports the error of `close(2)`, if any.
  absl::Status Close();

 private:
  int fd_ = -1;
};

// A pair of connected fds: `read`/`write` for a pipe; two equivalent ends for
// a socketpair.
struct FdPair {
  UniqueFd read;
  UniqueFd write;
};

// MakePipe()
//
// `pipe2(O_CLOEXEC)`. `flags` may add `O_NONBLOCK` or `O_DIRECT`.
absl::StatusOr<FdPair> MakePipe(int flags = 0);

// MakeSocketPair()
//
// `socketpair(AF_UNIX, type | SOCK_CLOEXEC)`; `type` is `SOCK_STREAM` or
// `SOCK_SEQPACKET`.
absl::StatusOr<FdPair> MakeSocketPair(int type = 1 /* SOCK_STREAM */);

// WriteAll()
//
// Writes all of `data`, continuing short writes and retrying EINTR. On a
// non-blocking fd, waits with poll(2) for writability. Errors: the errno of
// write(2) (`EPIPE` for a closed reader becomes `kOutOfRange`).
absl::Status WriteAll(int fd, absl::string_view data);

// ReadExact()
//
// Reads exactly `size` bytes into `buf`. Errors: `kOutOfRange` when the peer
// closes before `size` bytes arrived (the bytes read so far are in `buf` and
// their count in `*got`, when given); the errno of read(2).
absl::Status ReadExact(int fd, void* buf, size_t size, size_t* got = nullptr);

// ReadSome()
//
// One read(2) of at most `size` bytes, retrying EINTR. Returns the count;
// 0 means end of file.
absl::StatusOr<size_t> ReadSome(int fd, void* buf, size_t size);

// WaitReadable() / WaitWritable()
//
// poll(2) until the fd is ready or `timeout` passes. Returns true when ready
// (also on hang-up or error, which the next read or write reports), false on
// timeout. Signals do not shorten the wait. `absl::InfiniteDuration()` waits
// forever; a zero or negative timeout only checks.
absl::StatusOr<bool> WaitReadable(int fd, absl::Duration timeout);
absl::StatusOr<bool> WaitWritable(int fd, absl::Duration timeout);

// SetNonBlocking() / SetCloseOnExec()
absl::Status SetNonBlocking(int fd, bool on = true);
absl::Status SetCloseOnExec(int fd, bool on = true);

// DupCloexec()
//
// `fcntl(F_DUPFD_CLOEXEC)`: a new close-on-exec fd for the same file.
absl::StatusOr<UniqueFd> DupCloexec(int fd);

// SendWithFd() / ReceiveWithFd()
//
// Passing an fd over a Unix socket (SCM_RIGHTS). `SendWithFd()` writes all
// of `data` (not empty) with `fd` attached to its first byte, blocking as
// `WriteAll()` does; the receiver gets the fd from the `ReceiveWithFd()`
// that reads that byte.
//
// `ReceiveWithFd()` is one recvmsg(2) of up to `size` bytes (EINTR
// retried); an fd that came with them lands in `*fd`, close-on-exec (any
// more are closed). It returns what recvmsg returns -- the count, 0 at end
// of file, -1 with errno -- so that a non-blocking reader tests EAGAIN
// without building a status.
absl::Status SendWithFd(int sock, absl::string_view data, int fd);
ssize_t ReceiveWithFd(int sock, void* buf, size_t size, UniqueFd* fd);

}  // namespace mp

#endif  // MP_PROCESS_FD_H_
