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
#include "process/spin.h"

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


// Pause instructions between two tries while spinning: the try (a system
// call) dominates; the pauses only ease the sibling hyperthread.
constexpr int kPausesPerTry = 8;

// A budget that halves below this is switched off (until a short wait
// restores it).
constexpr int64_t kMinSpinNs = 1000;


// When a spin that starts at `start_ns` (monotonic) must end: after the
// budget, and not after `deadline`.
int64_t SpinEnd(int64_t start_ns, int64_t budget_ns, absl::Time deadline) {
  int64_t end = start_ns + budget_ns;
  if (deadline != absl::InfiniteFuture()) {
    const absl::Duration left = deadline - absl::Now();
    const int64_t left_ns =
        left <= absl::ZeroDuration()
            ? 0
            : std::min<int64_t>(absl::ToInt64Nanoseconds(left), budget_ns);
    end = std::min(end, start_ns + left_ns);
  }
  return end;
}

// poll(2) with a zero timeout: 1 readable (or hung up, or an error the
// next read reports), 0 not, -errno.
int PollReadableNow(int fd) {
  pollfd p = {fd, POLLIN, 0};
  while (true) {
    const int n = ::poll(&p, 1, 0);
    if (n >= 0) return n > 0 ? 1 : 0;
    if (errno != EINTR) return -errno;
  }
}

absl::Status ReadError(int err) {
  if (err == ECONNRESET) {
    return absl::OutOfRangeError("end of file: connection reset by peer");
  }
  return absl::ErrnoToStatus(err, "read");
}

// A spin that finds data later than this past its end was preempted.
constexpr int64_t kLateNs = 2000;

// What a spin tells the blocking wait after it.
struct SpinWait {
  int64_t start = 0;   // when the wait began (0: the first try succeeded)
  bool spun = false;   // whether it spun then (for ReadSpin::Slept)
};

// The spin schedule: calls `try_once` (non-blocking; returns a result >= 0
// when done, -EAGAIN when not yet, another -errno on error) until it is done,
// the spin budget is spent, or `deadline` comes. Returns the last result
// (-EAGAIN: give up and block). When the first try fails, `*wait` says when
// the wait began and whether it spun; a try that succeeds while spinning
// adapts the budget (ReadSpin::Spun).
template <typename TryOnce>
inline long Spin(TryOnce try_once, absl::Time deadline, ReadSpin* spin,
                 SpinWait* wait) {
  long r = try_once();
  if (r != -EAGAIN) return r;
  wait->start = mp::MonotonicNanos();
  wait->spun = spin->budget_ns != 0;
  if (!wait->spun) return r;
  const int64_t end = SpinEnd(wait->start, spin->budget_ns, deadline);
  for (int64_t now = wait->start; now < end;) {
    for (int k = 0; k < kPausesPerTry; ++k) mp::CpuRelax();
    r = try_once();
    now = mp::MonotonicNanos();
    if (r != -EAGAIN) {
      if (r >= 0) spin->Spun(now <= end + kLateNs);
      return r;
    }
  }
  return r;
}

// Spins with poll(2) until `fd` is readable: 1 readable (or hung up, or an
// error the next read reports), -EAGAIN not, other -errno.
long SpinPoll(int fd, absl::Time deadline, ReadSpin* spin, SpinWait* wait) {
  return Spin(
      [fd]() -> long {
        const int r = PollReadableNow(fd);
        return r == 0 ? -EAGAIN : r;
      },
      deadline, spin, wait);
}

}  // namespace

void ReadSpin::Spun(bool in_time) {
  if (in_time) {
    budget_ns = std::min(max_ns, budget_ns * 2);
    probe_after = kFirstProbeAfter;
    return;
  }
  budget_ns /= 4;
  if (budget_ns < kMinSpinNs) {
    budget_ns = 0;
    short_waits = 0;
    probe_after = std::min(probe_after * 2, kMaxProbeAfter);
  }
}

void ReadSpin::Slept(bool spun, int64_t waited_ns) {
  if (spun) {
    Spun(false);
    return;
  }
  if (budget_ns != 0) return;  // did not wait at all (spin disabled)
  if (waited_ns > max_ns) {
    short_waits = 0;
    return;
  }
  if (++short_waits < probe_after) return;
  short_waits = 0;
  budget_ns = std::min(max_ns, std::max(kMinSpinNs, max_ns / 4));
}

bool SpinUntilReadable(int fd, absl::Time deadline, ReadSpin* spin) {
  if (spin == nullptr || !spin->enabled()) return false;
  SpinWait wait;
  return SpinPoll(fd, deadline, spin, &wait) != -EAGAIN;
}

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
                      absl::Time deadline, size_t* got_out, bool is_socket,
                      ReadSpin* spin) {
  size_t got = 0;
  size_t ignored;
  if (got_out == nullptr) got_out = &ignored;
  *got_out = 0;
  while (got < size) {
    absl::StatusOr<size_t> n =
        ReadSomeUntil(fd, buf + got, size - got, deadline, is_socket, spin);
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
                                     absl::Time deadline, bool is_socket,
                                     ReadSpin* spin) {
  // Linux reads at most 0x7ffff000 bytes per call anyway.
  const size_t want = std::min<size_t>(size, 0x7ffff000);
  SpinWait wait;            // set when the spin phase found nothing at once
  bool readable = false;    // the spin phase saw the pipe readable
  if (spin != nullptr && spin->enabled()) {
    if (is_socket) {
      // recv(MSG_DONTWAIT) straight into `buf`: when the data is already
      // there (or arrives while spinning) it is the only system call.
      const long n = Spin(
          [&]() -> long {
            while (true) {
              const ssize_t got = ::recv(fd, buf, want, MSG_DONTWAIT);
              if (got >= 0) return static_cast<long>(got);
              if (errno == EINTR) continue;
              return errno == EWOULDBLOCK ? -EAGAIN : -errno;
            }
          },
          deadline, spin, &wait);
      if (n >= 0) return static_cast<size_t>(n);
      if (n != -EAGAIN) return ReadError(static_cast<int>(-n));
    } else {
      const long r = SpinPoll(fd, deadline, spin, &wait);
      if (r >= 0) {  // readable: the read below will not block
        wait.start = 0;
        readable = true;
      } else if (r != -EAGAIN) {
        return absl::ErrnoToStatus(static_cast<int>(-r), "poll");
      }
    }
  }
  while (true) {
    if (!readable && deadline != absl::InfiniteFuture()) {
      absl::Status ready = WaitReadableUntil(fd, deadline);
      if (!ready.ok()) return ready;
    }
    readable = false;
    ssize_t n = ::read(fd, buf, want);
    if (n >= 0) {
      if (wait.start != 0) {
        spin->Slept(wait.spun, mp::MonotonicNanos() - wait.start);
      }
      return static_cast<size_t>(n);
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      absl::Status ready = WaitReadableUntil(fd, deadline);
      if (!ready.ok()) return ready;
      continue;
    }
    return ReadError(err);
  }
}

}  // namespace ipc_internal
}  // namespace mp
