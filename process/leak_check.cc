#include "process/leak_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace mp {
namespace testing {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

template <typename F>
void ForEachDirEntry(const char* dir, F f) {
  std::unique_ptr<DIR, DirCloser> d(::opendir(dir));
  if (d == nullptr) return;
  int self = ::dirfd(d.get());
  while (struct dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    f(name, self);
  }
}

// The contents of a small /proc file, or "" when it cannot be read: the
// process may exit while we read, and read(2) then fails with ESRCH (raw
// calls, because libstdc++'s filebuf throws on such a read error).
std::string ReadProcFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[512];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// The parent pid from the text of /proc/<pid>/stat, or -1. The fields after
// the command, which is in parentheses and may hold spaces: "S 1234 ...".
pid_t ParentPidFromStat(const std::string& stat) {
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 3 >= stat.size()) return -1;
  const char* p = stat.c_str() + close + 2;  // the state letter
  while (*p != '\0' && *p != ' ') ++p;
  return static_cast<pid_t>(std::strtol(p, nullptr, 10));
}

template <typename T>
std::set<T> Minus(const std::set<T>& a, const std::set<T>& b) {
  std::set<T> out;
  for (const T& x : a) {
    if (b.count(x) == 0) out.insert(x);
  }
  return out;
}

}  // namespace

std::set<int> OpenFds() {
  std::set<int> fds;
  ForEachDirEntry("/proc/self/fd", [&](const std::string& name, int self) {
    int fd = std::atoi(name.c_str());
    if (fd != self) fds.insert(fd);
  });
  return fds;
}

std::set<pid_t> ChildPids() {
  std::set<pid_t> kids;
  const pid_t me = ::getpid();
  ForEachDirEntry("/proc", [&](const std::string& name, int) {
    if (name.empty() || name[0] < '0' || name[0] > '9') return;
    pid_t ppid = ParentPidFromStat(ReadProcFile("/proc/" + name + "/stat"));
    if (ppid == me) kids.insert(static_cast<pid_t>(std::atoi(name.c_str())));
  });
  return kids;
}

std::set<std::string> ShmEntries(const std::string& prefix) {
  std::set<std::string> names;
  if (prefix.empty()) return names;
  ForEachDirEntry("/dev/shm", [&](const std::string& name, int) {
    if (name.compare(0, prefix.size(), prefix) == 0) names.insert(name);
  });
  return names;
}

LeakCheck::LeakCheck(std::string shm_prefix)
    : shm_prefix_(std::move(shm_prefix)),
      fds_(OpenFds()),
      children_(ChildPids()),
      shm_(ShmEntries(shm_prefix_)) {}

absl::Status LeakCheck::Verify(absl::Duration grace) const {
  const absl::Time deadline = absl::Now() + grace;
  while (true) {
    std::set<int> fds = Minus(OpenFds(), fds_);
    std::set<pid_t> kids = Minus(ChildPids(), children_);
    std::set<std::string> shm = Minus(ShmEntries(shm_prefix_), shm_);
    if (fds.empty() && kids.empty() && shm.empty()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      std::string msg = "leaked:";
      if (!fds.empty()) {
        std::vector<std::string> described;
        for (int fd : fds) {
          char target[256] = {0};
          std::string link = absl::StrCat("/proc/self/fd/", fd);
          ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
          described.push_back(
              absl::StrCat(fd, "->", n > 0 ? std::string(target, n) : "?"));
        }
        absl::StrAppend(&msg, " fds [", absl::StrJoin(described, ", "), "]");
      }
      if (!kids.empty()) {
        absl::StrAppend(&msg, " children [", absl::StrJoin(kids, ", "), "]");
      }
      if (!shm.empty()) {
        absl::StrAppend(&msg, " /dev/shm [", absl::StrJoin(shm, ", "), "]");
      }
      return absl::InternalError(msg);
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace testing
}  // namespace mp
