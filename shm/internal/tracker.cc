#include "shm/internal/tracker.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace mp {
namespace shm_internal {
namespace {

constexpr uint32_t kFree = 0, kWriting = 1, kRegistered = 2;
constexpr size_t kNameCapacity = 252;  // NAME_MAX (255) fits with the state
constexpr size_t kEntries = 16383;

struct Entry {
  std::atomic<uint32_t> state;
  char name[kNameCapacity];
};

struct Table {
  std::atomic<uint32_t> ready;        // futex: the tracker is watching
  std::atomic<int32_t> tracker_pid;
  uint32_t pad[14];
  Entry entries[kEntries];
};

std::mutex g_mu;
Table* g_table = nullptr;    // this process's (or, after fork, the parent's)
pid_t g_table_pid = 0;       // the process the tracker of g_table watches
size_t g_high = 0;           // entries at and above this index are free

// A fork() while another thread holds g_mu must not leave the child's copy
// locked forever.
void LockBeforeFork() { g_mu.lock(); }
void UnlockAfterFork() { g_mu.unlock(); }
[[maybe_unused]] const int g_atfork =
    pthread_atfork(LockBeforeFork, UnlockAfterFork, UnlockAfterFork);

long RawFutex(void* addr, int op, uint32_t val, const timespec* ts) {
  long r = ::syscall(SYS_futex, addr, op, val, ts, nullptr, 0);
  return r < 0 ? -errno : r;
}

void CloseAllFds() {
  // close_range(2) since Linux 5.9; else close one by one.
  if (::syscall(SYS_close_range, 0u, ~0u, 0u) == 0) return;
  struct rlimit rl;
  long max = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < 1048576) {
    max = static_cast<long>(rl.rlim_cur);
  }
  for (long fd = 0; fd < max; ++fd) ::close(static_cast<int>(fd));
}

// Runs in the tracker (a grandchild forked from a possibly multi-threaded
// process): raw system calls only.
[[noreturn]] void TrackerMain(Table* table, pid_t creator) {
  ::setsid();
  CloseAllFds();
  int pidfd = SysPidfdOpen(creator);
  table->tracker_pid.store(static_cast<int32_t>(::getpid()));
  table->ready.store(1);
  RawFutex(&table->ready, FUTEX_WAKE, 1u << 30, nullptr);
  if (pidfd >= 0) {
    struct pollfd p = {pidfd, POLLIN, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
  } else {
    // No pidfd (Linux < 5.3): poll the creator's existence. A zombie creator
    // still exists; its parent reaps it soon in practice.
    const struct timespec tick = {0, 100 * 1000 * 1000};
    while (::kill(creator, 0) == 0 || errno == EPERM) {
      ::nanosleep(&tick, nullptr);
    }
  }
  for (size_t i = 0; i < kEntries; ++i) {
    Entry& e = table->entries[i];
    if (e.state.load(std::memory_order_acquire) != kRegistered) continue;
    char path[kNameCapacity + 2];
    path[0] = '/';
    size_t n = ::strnlen(e.name, kNameCapacity - 1);
    std::memcpy(path + 1, e.name, n);
    path[n + 1] = '\0';
    ::shm_unlink(path);  // ENOENT: already gone
  }
  ::_exit(0);
}

// fork() without running pthread_atfork handlers (ours would deadlock on
// g_mu, which the caller holds): the children only make raw system calls.
pid_t ForkWithoutHandlers() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  return ::_Fork();
#else
  return static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
#endif
}

absl::Status StartTrackerLocked() {
  void* mem = ::mmap(nullptr, sizeof(Table), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap tracker table");
  Table* table = static_cast<Table*>(mem);
  const pid_t creator = ::getpid();

  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t mid = ForkWithoutHandlers();
  if (mid == 0) {
    pid_t tracker = ForkWithoutHandlers();
    if (tracker == 0) TrackerMain(table, creator);  // signals stay blocked
    ::_exit(tracker < 0 ? 1 : 0);
  }
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (mid < 0) {
    ::munmap(mem, sizeof(Table));
    return absl::ErrnoToStatus(fork_errno, "fork shm tracker");
  }
  int wstatus = 0;
  while (::waitpid(mid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    ::munmap(mem, sizeof(Table));
    return absl::InternalError("fork shm tracker: the second fork failed");
  }
  // Wait until the tracker watches us (it has its pidfd) so that a crash
  // right after this function returns is still seen.
  struct timespec ts = {0, 50 * 1000 * 1000};
  for (int i = 0; i < 200 && table->ready.load() == 0; ++i) {
    RawFutex(&table->ready, FUTEX_WAIT, 0, &ts);
  }
  if (table->ready.load() == 0) {
    ::munmap(mem, sizeof(Table));
    return absl::DeadlineExceededError("shm tracker did not start within 10s");
  }
  g_table = table;
  g_table_pid = creator;
  g_high = 0;
  return absl::OkStatus();
}

}  // namespace

int SysPidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  long r = ::syscall(SYS_pidfd_open, pid, 0);
  return r < 0 ? -errno : static_cast<int>(r);
#else
  (void)pid;
  return -ENOSYS;
#endif
}

absl::Status TrackSegment(absl::string_view name) {
  if (name.empty() || name.size() >= kNameCapacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("shm tracker: bad name '", name, "'"));
  }
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_table == nullptr || g_table_pid != ::getpid()) {
    // First owned segment, or a fork child: the parent's tracker watches the
    // parent, so this process needs its own.
    absl::Status s = StartTrackerLocked();
    if (!s.ok()) return s;
  }
  for (size_t i = 0; i < kEntries; ++i) {
    Entry& e = g_table->entries[i];
    uint32_t expected = kFree;
    if (!e.state.compare_exchange_strong(expected, kWriting)) continue;
    std::memcpy(e.name, name.data(), name.size());
    e.name[name.size()] = '\0';
    e.state.store(kRegistered, std::memory_order_release);
    if (i + 1 > g_high) g_high = i + 1;
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError("shm tracker: too many live segments");
}

void UntrackSegment(absl::string_view name) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_table == nullptr) return;
  for (size_t i = 0; i < g_high; ++i) {
    Entry& e = g_table->entries[i];
    if (e.state.load(std::memory_order_acquire) != kRegistered) continue;
    if (absl::string_view(e.name) == name) {
      e.state.store(kFree, std::memory_order_release);
      return;
    }
  }
}

pid_t TrackerPid() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_table == nullptr || g_table_pid != ::getpid()) return 0;
  return g_table->tracker_pid.load();
}

}  // namespace shm_internal
}  // namespace mp
