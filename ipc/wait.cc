#include "ipc/wait.h"

#include <errno.h>
#include <poll.h>

#include <algorithm>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace mp {

absl::StatusOr<std::vector<size_t>> Wait(absl::Span<const WaitObject> objects,
                                         absl::Duration timeout) {
  std::vector<pollfd> fds(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    if (objects[i].fd() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Wait: object ", i, " is a closed connection or a negative fd"));
    }
    fds[i] = {objects[i].fd(), POLLIN, 0};
  }
  // Connections with read-ahead bytes are ready now; poll the rest without
  // waiting.
  bool any_buffered = false;
  for (const WaitObject& o : objects) any_buffered |= o.buffered();
  if (any_buffered) timeout = absl::ZeroDuration();
  const bool forever = timeout == absl::InfiniteDuration();
  const absl::Time deadline = forever ? absl::InfiniteFuture() : absl::Now() + timeout;
  std::vector<size_t> ready;
  while (true) {
    int timeout_ms = -1;
    if (!forever) {
      absl::Duration left = deadline - absl::Now();
      timeout_ms = left <= absl::ZeroDuration()
                       ? 0
                       : static_cast<int>(std::min<int64_t>(
                             absl::ToInt64Milliseconds(
                                 absl::Ceil(left, absl::Milliseconds(1))),
                             1 << 30));
    }
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "poll");
    }
    if (n > 0 || any_buffered) {
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents & POLLNVAL) {
          return absl::InvalidArgumentError(
              absl::StrCat("Wait: fd ", fds[i].fd, " is not open"));
        }
        if (fds[i].revents != 0 || objects[i].buffered()) ready.push_back(i);
      }
      return ready;
    }
    if (timeout_ms == 0 || (!forever && absl::Now() >= deadline)) return ready;
  }
}

}  // namespace mp
