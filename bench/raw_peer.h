// -----------------------------------------------------------------------------
// File: bench/raw_peer.h
// -----------------------------------------------------------------------------
//
// Plain-C building blocks for the raw baselines that mp's benchmarks are
// compared against: a forked peer process on one end of a socketpair, and
// read/write loops with nothing but the system calls.
//
//   auto [fd, pid] = mp::bench::ForkPeer([](mp::UniqueFd c) { ... });
//   if (!mp::bench::RawWriteAll(fd.get(), buf, n)) state.SkipWithError("io");
//   fd.reset();
//   mp::bench::Reap(pid);

#ifndef MP_BENCH_RAW_PEER_H_
#define MP_BENCH_RAW_PEER_H_

#include <errno.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <utility>

#include "absl/status/statusor.h"
#include "process/fd.h"

namespace mp {
namespace bench {

// ForkPeer()
//
// Forks `child(fd)` on one end of a socketpair (the child `_exit(0)`s when it
// returns); returns the parent's end and the child's pid. Aborts when the
// socketpair or fork fails: a benchmark cannot go on without its peer.
template <typename F>
std::pair<UniqueFd, pid_t> ForkPeer(F child) {
  absl::StatusOr<FdPair> p = MakeSocketPair();
  if (!p.ok()) std::abort();
  pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    p->read.reset();
    child(std::move(p->write));
    _exit(0);
  }
  p->write.reset();
  return {std::move(p->read), pid};
}

// Reap(): waitpid(), retrying EINTR.
inline void Reap(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

// ForkExitReap()
//
// The floor of starting and joining `n` (at most 8) processes: forks `n`
// children one after the other that `_exit(0)` at once, then reaps them.
// False when a fork failed (the children forked are reaped all the same).
inline bool ForkExitReap(int n) {
  pid_t pids[8];
  int forked = 0;
  while (forked < n && forked < 8) {
    const pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) break;
    pids[forked++] = pid;
  }
  for (int i = 0; i < forked; ++i) Reap(pids[i]);
  return forked == n;
}

// RawReadExact(): reads exactly n bytes; false on EOF or error.
inline bool RawReadExact(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    got += static_cast<size_t>(r);
  }
  return true;
}

// RawWriteAll(): writes all n bytes; false on error.
inline bool RawWriteAll(int fd, const char* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, buf + done, n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(w);
  }
  return true;
}

}  // namespace bench
}  // namespace mp

#endif  // MP_BENCH_RAW_PEER_H_
