// -----------------------------------------------------------------------------
// File: ipc/wait.h
// -----------------------------------------------------------------------------
//
// `mp::Wait()` blocks until at least one of several connections, fds or
// process sentinels is ready (Python: `multiprocessing.connection.wait`).
//
//   std::vector<mp::WaitObject> objects = {&conn_a, &conn_b,
//                                          process.sentinel()};
//   absl::StatusOr<std::vector<size_t>> ready =
//       mp::Wait(objects, absl::Seconds(5));
//   // *ready holds the indices of the ready objects; empty on timeout.
//
// Ready means a read would not block: data, end of file (a closed peer, an
// exited process's sentinel) or an error the next read reports.

#ifndef MP_IPC_WAIT_H_
#define MP_IPC_WAIT_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "ipc/connection.h"

namespace mp {

// Something `Wait()` can watch: a readable `Connection` or a raw fd (a
// socket, a pipe, `Process::sentinel()`).
class WaitObject {
 public:
  WaitObject(const Connection* connection)  // NOLINT: implicit on purpose
      : fd_(connection != nullptr ? connection->fileno() : -1),
        buffered_(connection != nullptr && connection->buffered() > 0) {}
  WaitObject(const Connection& connection)  // NOLINT
      : fd_(connection.fileno()), buffered_(connection.buffered() > 0) {}
  WaitObject(int fd) : fd_(fd) {}  // NOLINT
  int fd() const { return fd_; }
  // The connection already holds read-ahead bytes: ready without polling.
  bool buffered() const { return buffered_; }

 private:
  int fd_;
  bool buffered_ = false;
};

// Wait()
//
// Returns the indices (ascending) of the ready objects in `objects`,
// waiting up to `timeout` for at least one (`absl::InfiniteDuration()`:
// Python's `timeout=None`; zero or negative: just check). An empty result
// means the timeout passed. Signals do not shorten the wait.
//
// Errors: kInvalidArgument for a closed connection, a negative or invalid
// (not open) fd.
absl::StatusOr<std::vector<size_t>> Wait(absl::Span<const WaitObject> objects,
                                         absl::Duration timeout =
                                             absl::InfiniteDuration());

}  // namespace mp

#endif  // MP_IPC_WAIT_H_
