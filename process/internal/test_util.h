// -----------------------------------------------------------------------------
// File: process/internal/test_util.h
// -----------------------------------------------------------------------------
//
// Test-only helpers for tests that run or wait on other processes: running
// a function in a fork child and reaping it, polling for a condition with a
// generous bound (a hang check, not a timing), whether a process (any, not
// only a child) has ended, whether a shared memory segment exists, and
// where a test's data dependency is.
//
//   EXPECT_EQ(mp::testing::WaitChild(mp::testing::ForkChild([] { return 0; })), 0);
//   EXPECT_TRUE(mp::testing::Eventually([&] { return !SegmentExists(); }));
//   EXPECT_TRUE(mp::testing::Eventually(
//       [&] { return mp::testing::ProcessGoneOrZombie(tracker_pid); }));

#ifndef MP_PROCESS_INTERNAL_TEST_UTIL_H_
#define MP_PROCESS_INTERNAL_TEST_UTIL_H_

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mp {
namespace testing {

// ForkChild()
//
// Forks a child that runs `body` and _exit()s with its result (stdio is
// flushed before and after, so nothing buffered is written twice). The
// child's pid, or -1 when fork failed.
inline pid_t ForkChild(const std::function<int()>& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int code = body();
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

// WaitChild()
//
// Reaps the child `pid`: its exit code, with Python's convention (-N for
// signal N); -1000 when it cannot be waited for (no such child, or `pid` is
// ForkChild()'s -1).
inline int WaitChild(pid_t pid) {
  if (pid < 0) return -1000;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1000;
  }
  return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

// Eventually()
//
// Polls `pred` every 10 ms for up to `timeout`; true as soon as it holds.
template <typename F>
bool Eventually(F pred, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return pred();
}

// ReadProcFile()
//
// The contents of a /proc file, read with open/read (std::ifstream throws
// when the process exits mid-read); empty when it cannot be read.
inline std::string ReadProcFile(const std::string& path) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// ProcessGoneOrZombie(): whether `pid` has ended (reaped or not).
inline bool ProcessGoneOrZombie(pid_t pid) {
  const std::string stat = ReadProcFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ||
         stat[close + 2] == 'Z' || stat[close + 2] == 'X';
}

// ShmExists(): whether /dev/shm holds `name` (without '/').
inline bool ShmExists(absl::string_view name) {
  struct stat st;
  return ::stat(absl::StrCat("/dev/shm/", name).c_str(), &st) == 0;
}

// RunfilesPath()
//
// The path of a test's data dependency, given relative to the workspace
// root ("shm/shared_memory_test_helper"), under Bazel's TEST_SRCDIR.
inline std::string RunfilesPath(absl::string_view path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/",
                      workspace != nullptr ? workspace : "mp", "/", path);
}

}  // namespace testing
}  // namespace mp

#endif  // MP_PROCESS_INTERNAL_TEST_UTIL_H_
