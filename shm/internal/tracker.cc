#include "shm/internal/tracker.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "process/fd.h"

namespace mp {
namespace shm_internal {
namespace {

// An entry is a segment name (kRegistered) or a name prefix (kPrefix).
constexpr uint32_t kFree = 0, kWriting = 1, kRegistered = 2, kPrefix = 3;
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
bool g_clone_only = false;   // UseCloneTrackerForTesting()

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

// The tracker shares the creator's address space (see StartTrackerLocked),
// including the creating thread's TLS: it must not write errno, hit a glibc
// cancellation point, or read the stack-protector canary through %fs after
// that thread may be gone. So it makes system calls with this, which returns
// -errno and touches no thread state.
inline long RawSyscall(long n, long a = 0, long b = 0, long c = 0, long d = 0,
                       long e = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
               : "rcx", "r11", "memory");
  return ret;
#else
  long r = ::syscall(n, a, b, c, d, e);
  return r < 0 ? -errno : r;
#endif
}

#define MP_TRACKER_CODE \
  __attribute__((no_sanitize("address", "undefined"), noinline, \
                 optimize("no-stack-protector")))

MP_TRACKER_CODE void CloseAllFds() {
  // close_range(2) since Linux 5.9; else close one by one.
  if (RawSyscall(SYS_close_range, 0, ~0u, 0) == 0) return;
  for (long fd = 0; fd < 65536; ++fd) RawSyscall(SYS_close, fd);
}

// Unlinks every /dev/shm entry whose name starts with `prefix` (a
// nul-terminated string of at most kNameCapacity - 1 bytes), with raw system
// calls only (the CLONE_VM tracker runs it too). Unlinking while reading the
// directory may make the kernel skip entries, so it reads it again until a
// pass removes nothing (at most 8 passes).
MP_TRACKER_CODE void UnlinkPrefixed(const char* prefix) {
  size_t plen = 0;
  while (plen < kNameCapacity - 1 && prefix[plen] != '\0') ++plen;
  if (plen == 0) return;
  for (int pass = 0; pass < 8; ++pass) {
    const long dir = RawSyscall(SYS_openat, AT_FDCWD,
                                reinterpret_cast<long>("/dev/shm"),
                                O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return;
    bool removed = false;
    alignas(8) char buf[4096];
    for (;;) {
      const long n = RawSyscall(SYS_getdents64, dir,
                                reinterpret_cast<long>(buf), sizeof buf);
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name
        unsigned short reclen;
        __builtin_memcpy(&reclen, buf + off + 16, sizeof reclen);
        const char* name = buf + off + 19;
        size_t k = 0;
        while (k < plen && name[k] == prefix[k]) ++k;
        if (k == plen && RawSyscall(SYS_unlinkat, dir,
                                    reinterpret_cast<long>(name), 0) == 0) {
          removed = true;
        }
        if (reclen == 0) break;
        off += reclen;
      }
    }
    RawSyscall(SYS_close, dir);
    if (!removed) return;
  }
}

// After the creator died: unlinks what `table` lists. Raw system calls only.
MP_TRACKER_CODE void UnlinkRegistered(Table* table) {
  static constexpr char kDir[] = "/dev/shm/";
  for (size_t i = 0; i < kEntries; ++i) {
    Entry& e = table->entries[i];
    const uint32_t state = e.state.load(std::memory_order_acquire);
    if (state == kPrefix) {
      UnlinkPrefixed(e.name);
      continue;
    }
    if (state != kRegistered) continue;
    char path[sizeof(kDir) + kNameCapacity];
    size_t n = 0;
    for (const char* p = kDir; *p;) path[n++] = *p++;
    for (size_t k = 0; k < kNameCapacity - 1 && e.name[k] != '\0';) {
      path[n++] = e.name[k++];
    }
    path[n] = '\0';
    RawSyscall(SYS_unlink, reinterpret_cast<long>(path));  // ENOENT: gone
  }
}

// The tracker's work, in either kind of tracker: announces itself in
// `table`, waits until `creator` is gone, unlinks what `table` lists and
// exits. Raw system calls and plain loads only (the CLONE_VM tracker shares
// the creator's address space).
[[noreturn]] MP_TRACKER_CODE void WatchThenUnlink(Table* table, pid_t creator) {
#ifdef SYS_pidfd_open
  const long pidfd = RawSyscall(SYS_pidfd_open, creator, 0);
#else
  const long pidfd = -ENOSYS;
#endif
  table->tracker_pid.store(static_cast<int32_t>(RawSyscall(SYS_getpid)));
  table->ready.store(1);
  RawSyscall(SYS_futex, reinterpret_cast<long>(&table->ready), FUTEX_WAKE,
             1 << 30);
  if (pidfd >= 0) {
    struct pollfd p = {static_cast<int>(pidfd), POLLIN, 0};
    while (RawSyscall(SYS_ppoll, reinterpret_cast<long>(&p), 1) == -EINTR) {
    }
  } else if (pidfd != -ESRCH) {  // ESRCH: the creator is already gone
    // No pidfd (Linux < 5.3): poll the creator's existence. A zombie creator
    // still exists; its parent reaps it soon in practice.
    const struct timespec tick = {0, 100 * 1000 * 1000};
    for (;;) {
      const long r = RawSyscall(SYS_kill, creator, 0);
      if (r != 0 && r != -EPERM) break;
      RawSyscall(SYS_nanosleep, reinterpret_cast<long>(&tick), 0);
    }
  }
  UnlinkRegistered(table);
  RawSyscall(SYS_exit_group, 0);
  __builtin_unreachable();
}

// Waits until the tracker of `table` watches its creator (it has its pidfd),
// so that a crash right after the tracker's start returns is still seen.
// False when it did not start within 10 s.
bool WaitUntilReady(Table* table) {
  struct timespec ts = {0, 50 * 1000 * 1000};
  for (int i = 0; i < 200 && table->ready.load() == 0; ++i) {
    RawFutex(&table->ready, FUTEX_WAIT, 0, &ts);
  }
  return table->ready.load() != 0;
}

struct TrackerArgs {
  Table* table;
  pid_t creator;
  char* tracker_stack_top;
};

// The CLONE_VM tracker's main function, on its own stack, in the creator's
// address space.
MP_TRACKER_CODE int TrackerMain(void* arg) {
  const TrackerArgs args = *static_cast<TrackerArgs*>(arg);
  RawSyscall(SYS_setsid);
  CloseAllFds();
  WatchThenUnlink(args.table, args.creator);
}

// The intermediate child: starts the tracker and exits at once, so the
// tracker is re-parented (never our zombie).
MP_TRACKER_CODE int IntermediateMain(void* arg) {
  auto* args = static_cast<TrackerArgs*>(arg);
  const int tracker = ::clone(TrackerMain, args->tracker_stack_top,
                              CLONE_VM | SIGCHLD, arg);
  RawSyscall(SYS_exit_group, tracker < 0 ? 1 : 0);
  __builtin_unreachable();
}

constexpr size_t kStackSize = 64 * 1024;

// The fallback tracker, for when re-executing this program would not run
// mp's tracker (mp loaded with dlopen into a program that does not link it,
// see StartupLoadsObjectAt()): cloned with
// CLONE_VM, sharing this process's memory instead of copying it, so it pins
// nothing. Its weakness: the kernel's OOM killer kills every process sharing
// the victim's memory, tracker included.
absl::Status StartTrackerCloneLocked(Table** table_out) {
  void* mem = ::mmap(nullptr, sizeof(Table), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap tracker table");
  Table* table = static_cast<Table*>(mem);
  // Two stacks: the intermediate's (freed below) and the tracker's (kept for
  // the life of the process: the tracker runs on it in our address space).
  void* stacks = ::mmap(nullptr, 2 * kStackSize, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stacks == MAP_FAILED) {
    const int err = errno;
    ::munmap(mem, sizeof(Table));
    return absl::ErrnoToStatus(err, "mmap tracker stacks");
  }
  char* mid_stack_top = static_cast<char*>(stacks) + kStackSize;
  TrackerArgs args = {table, ::getpid(),
                      static_cast<char*>(stacks) + 2 * kStackSize};

  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);  // inherited: stay blocked
  const int mid =
      ::clone(IntermediateMain, mid_stack_top, CLONE_VM | SIGCHLD, &args);
  const int clone_errno = errno;
  int wstatus = 0;
  if (mid > 0) {
    while (::waitpid(mid, &wstatus, 0) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (mid < 0 || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    ::munmap(mem, sizeof(Table));
    ::munmap(stacks, 2 * kStackSize);
    return mid < 0 ? absl::ErrnoToStatus(clone_errno, "clone shm tracker")
                   : absl::InternalError("clone shm tracker failed");
  }
  ::munmap(stacks, kStackSize);  // the intermediate's; it has exited
  // `args` stays alive until the tracker is ready: it copies it first thing.
  if (!WaitUntilReady(table)) {
    // Leave the table and stack mapped: a late tracker would still use them.
    return absl::DeadlineExceededError("shm tracker did not start within 10s");
  }
  *table_out = table;
  return absl::OkStatus();
}

// --- The exec'd tracker ------------------------------------------------------
//
// The preferred tracker is this very program re-executed (/proc/self/exe)
// with MP_SHM_TRACKER_PID set: a separate process with its own, fresh memory
// (a fork()ed helper would pin every page the creator had at that moment,
// copy-on-write, until it exits; a CLONE_VM helper dies with the creator
// when the OOM killer strikes). The constructor below turns it into the
// tracker before main() runs. The registry table comes as fd 3, a memfd
// the creator maps MAP_SHARED and then closes.

constexpr char kTrackerEnv[] = "MP_SHM_TRACKER_PID";
constexpr int kTableFd = 3;

// Runs before main() (and before C++ static initializers of the program) in
// every program linking mp's shared memory; returns at once unless this
// process was started as a tracker.
__attribute__((constructor(101))) void MaybeRunAsTracker() {
  const char* pid = ::getenv(kTrackerEnv);
  if (pid == nullptr) return;
  const pid_t creator = static_cast<pid_t>(std::strtol(pid, nullptr, 10));
  void* mem = ::mmap(nullptr, sizeof(Table), PROT_READ | PROT_WRITE,
                     MAP_SHARED, kTableFd, 0);
  if (creator <= 0 || mem == MAP_FAILED) ::_exit(1);
  ::close(kTableFd);
  WatchThenUnlink(static_cast<Table*>(mem), creator);
}

// fork() without running pthread_atfork handlers (ours would deadlock on
// g_mu, which the caller holds); the children only call async-signal-safe
// functions before execve.
pid_t ForkWithoutHandlers() {
#if defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  return ::_Fork();
#else
  return static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
#endif
}

// Starts the exec'd tracker; on success `*table_out` is its mapped table.
absl::Status StartTrackerExecLocked(Table** table_out) {
  // fds at 10 or above, so that placing the table at fd 3 in the child
  // cannot clobber the error pipe.
  UniqueFd memfd(static_cast<int>(::syscall(SYS_memfd_create, "mp-shm-tracker",
                                            MFD_CLOEXEC)));
  if (!memfd.valid()) return absl::ErrnoToStatus(errno, "memfd_create");
  UniqueFd table_fd(::fcntl(memfd.get(), F_DUPFD_CLOEXEC, 10));
  if (!table_fd.valid()) return absl::ErrnoToStatus(errno, "fcntl");
  memfd.reset();
  if (::ftruncate(table_fd.get(), sizeof(Table)) != 0) {
    return absl::ErrnoToStatus(errno, "ftruncate tracker table");
  }
  void* mem = ::mmap(nullptr, sizeof(Table), PROT_READ | PROT_WRITE,
                     MAP_SHARED, table_fd.get(), 0);
  if (mem == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap tracker table");
  Table* table = static_cast<Table*>(mem);
  auto fail = [&](absl::Status s) {
    ::munmap(mem, sizeof(Table));
    return s;
  };
  absl::StatusOr<FdPair> pipe = MakePipe();
  if (!pipe.ok()) return fail(pipe.status());
  UniqueFd err_read(::fcntl(pipe->read.get(), F_DUPFD_CLOEXEC, 10));
  UniqueFd err_write(::fcntl(pipe->write.get(), F_DUPFD_CLOEXEC, 10));
  pipe->read.reset();
  pipe->write.reset();
  if (!err_read.valid() || !err_write.valid()) {
    return fail(absl::ErrnoToStatus(errno, "fcntl"));
  }

  // Everything the child needs is prepared here.
  // Our environment (LD_LIBRARY_PATH and the like may be needed to start)
  // plus the tracker's variable.
  std::string env = absl::StrCat(kTrackerEnv, "=", ::getpid());
  std::vector<char*> envp;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, kTrackerEnv, sizeof(kTrackerEnv) - 1) != 0) {
      envp.push_back(*e);
    }
  }
  envp.push_back(env.data());
  envp.push_back(nullptr);
  char name[] = "mp-shm-tracker";
  char* const argv[] = {name, nullptr};
  const int tfd = table_fd.get();
  const int efd = err_write.get();

  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);  // the tracker keeps them blocked
  const pid_t mid = ForkWithoutHandlers();
  if (mid == 0) {
    const pid_t tracker = ForkWithoutHandlers();
    if (tracker == 0) {
      ::setsid();
      int devnull = ::open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
      }
      if (::dup2(tfd, kTableFd) == kTableFd) {
        // Everything else >= 4 closes at exec (the error pipe already does).
        if (::syscall(SYS_close_range, kTableFd + 1, ~0u,
                      4 /*CLOSE_RANGE_CLOEXEC, Linux 5.11*/) != 0) {
          for (int fd = kTableFd + 1; fd < 4096; ++fd) {
            ::fcntl(fd, F_SETFD, FD_CLOEXEC);
          }
        }
        ::execve("/proc/self/exe", argv, envp.data());
      }
      const int err = errno;
      ssize_t unused = ::write(efd, &err, sizeof(err));
      (void)unused;
      ::_exit(127);
    }
    ::_exit(tracker < 0 ? 1 : 0);
  }
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  err_write.reset();
  table_fd.reset();
  if (mid < 0) return fail(absl::ErrnoToStatus(fork_errno, "fork shm tracker"));
  int wstatus = 0;
  while (::waitpid(mid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return fail(absl::InternalError("fork shm tracker: the second fork failed"));
  }
  int child_errno = 0;
  absl::Status r = ReadExact(err_read.get(), &child_errno, sizeof(child_errno));
  if (r.ok()) {
    return fail(absl::ErrnoToStatus(child_errno, "exec shm tracker"));
  }
  // EOF: the exec succeeded.
  if (!WaitUntilReady(table)) {
    // A late tracker would still find its table mapped: leave it.
    return absl::DeadlineExceededError("exec'd shm tracker did not start");
  }
  *table_out = table;
  return absl::OkStatus();
}

// --- Does re-executing the program run the tracker? -------------------------
//
// The objects the dynamic linker has loaded, as dl_iterate_phdr(3) lists them
// (the main program first).
struct LoadedObject {
  uintptr_t bias = 0;
  const ElfW(Phdr)* phdr = nullptr;
  int phnum = 0;
  std::string path;    // "" for the main program
  std::string soname;  // DT_SONAME, if any
  std::vector<std::string> needed;  // DT_NEEDED
};

// Whether the `size` bytes at `addr` lie in one of `object`'s segments.
bool Holds(const LoadedObject& object, uintptr_t addr, size_t size) {
  for (int i = 0; i < object.phnum; ++i) {
    const ElfW(Phdr)& ph = object.phdr[i];
    const uintptr_t start = object.bias + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && addr >= start &&
        addr + size <= start + ph.p_memsz) {
      return true;
    }
  }
  return false;
}

// Reads `object`'s DT_SONAME and DT_NEEDED from its dynamic section in
// memory. glibc relocates the address-valued entries of a writable dynamic
// section in place and leaves a read-only one (the vDSO's) as linked: a
// string table address below the load bias is taken as unrelocated. A string
// table outside the object's segments leaves the lists empty.
void ReadDynamicNames(LoadedObject* object) {
  const ElfW(Dyn)* dyn = nullptr;
  for (int i = 0; i < object->phnum; ++i) {
    if (object->phdr[i].p_type == PT_DYNAMIC) {
      dyn = reinterpret_cast<const ElfW(Dyn)*>(object->bias +
                                               object->phdr[i].p_vaddr);
    }
  }
  if (dyn == nullptr) return;  // static
  uintptr_t strtab = 0;
  size_t strsz = 0;
  for (const ElfW(Dyn)* d = dyn; d->d_tag != DT_NULL; ++d) {
    if (d->d_tag == DT_STRTAB) strtab = d->d_un.d_ptr;
    if (d->d_tag == DT_STRSZ) strsz = d->d_un.d_val;
  }
  if (strtab == 0 || strsz == 0) return;
  if (strtab < object->bias) strtab += object->bias;
  if (!Holds(*object, strtab, strsz)) return;
  const char* strings = reinterpret_cast<const char*>(strtab);
  auto string_at = [&](size_t offset) {
    if (offset >= strsz) return std::string();
    return std::string(strings + offset,
                       strnlen(strings + offset, strsz - offset));
  };
  for (const ElfW(Dyn)* d = dyn; d->d_tag != DT_NULL; ++d) {
    if (d->d_tag == DT_NEEDED) {
      object->needed.push_back(string_at(d->d_un.d_val));
    }
    if (d->d_tag == DT_SONAME) object->soname = string_at(d->d_un.d_val);
  }
}

std::vector<LoadedObject> LoadedObjects() {
  std::vector<LoadedObject> objects;
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        LoadedObject o;
        o.bias = info->dlpi_addr;
        o.phdr = info->dlpi_phdr;
        o.phnum = info->dlpi_phnum;
        o.path = info->dlpi_name != nullptr ? info->dlpi_name : "";
        static_cast<std::vector<LoadedObject>*>(out)->push_back(std::move(o));
        return 0;
      },
      &objects);
  for (LoadedObject& o : objects) ReadDynamicNames(&o);
  return objects;
}

// Whether `name` (a DT_NEEDED entry or an LD_PRELOAD item) names `object`.
bool Names(absl::string_view name, const LoadedObject& object) {
  if (name.empty() || object.path.empty()) return false;
  if (name == object.soname || name == object.path) return true;
  const size_t slash = object.path.rfind('/');
  return name.find('/') == absl::string_view::npos &&
         slash != std::string::npos &&
         name == absl::string_view(object.path).substr(slash + 1);
}

}  // namespace

bool StartupLoadsObjectAt(const void* addr) {
  const std::vector<LoadedObject> objects = LoadedObjects();
  if (objects.empty()) return false;
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  int holder = -1;
  for (size_t k = 0; k < objects.size() && holder < 0; ++k) {
    if (Holds(objects[k], a, 1)) holder = static_cast<int>(k);
  }
  if (holder < 0) return false;  // not in any object (heap, stack)
  if (holder == 0) return true;  // the main program (static ones included)
  // The objects loaded at start-up: the main program, what LD_PRELOAD names
  // (the environment is passed on) and what they need, transitively.
  std::vector<bool> loaded(objects.size(), false);
  std::vector<size_t> todo = {0};
  loaded[0] = true;
  auto add_named = [&](absl::string_view name) {
    for (size_t k = 0; k < objects.size(); ++k) {
      if (!loaded[k] && Names(name, objects[k])) {
        loaded[k] = true;
        todo.push_back(k);
      }
    }
  };
  if (const char* preload = ::getenv("LD_PRELOAD")) {
    for (absl::string_view item : absl::StrSplit(preload, absl::ByAnyChar(" :"),
                                                 absl::SkipEmpty())) {
      add_named(item);
    }
  }
  while (!todo.empty()) {
    const size_t k = todo.back();
    todo.pop_back();
    for (const std::string& name : objects[k].needed) add_named(name);
  }
  return loaded[holder];
}

namespace {

absl::Status StartTrackerLocked() {
  // Re-executing the program runs the tracker only if the program loads
  // this code at start-up; otherwise it would run someone else's main().
  Table* table = nullptr;
  absl::Status s = absl::UnimplementedError("exec'd tracker not used");
  if (!g_clone_only &&
      StartupLoadsObjectAt(reinterpret_cast<const void*>(&MaybeRunAsTracker))) {
    s = StartTrackerExecLocked(&table);
  }
  if (!s.ok()) s = StartTrackerCloneLocked(&table);
  if (!s.ok()) return s;
  g_table = table;
  g_table_pid = ::getpid();
  g_high = 0;
  return s;
}

absl::Status TrackEntry(absl::string_view name, uint32_t kind) {
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
    e.state.store(kind, std::memory_order_release);
    if (i + 1 > g_high) g_high = i + 1;
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError("shm tracker: too many live segments");
}

void UntrackEntry(absl::string_view name, uint32_t kind) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_table == nullptr) return;
  for (size_t i = 0; i < g_high; ++i) {
    Entry& e = g_table->entries[i];
    if (e.state.load(std::memory_order_acquire) != kind) continue;
    if (absl::string_view(e.name) == name) {
      e.state.store(kFree, std::memory_order_release);
      return;
    }
  }
}

}  // namespace

absl::Status TrackSegment(absl::string_view name) {
  if (name.empty() || name.size() >= kNameCapacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("shm tracker: bad name '", name, "'"));
  }
  return TrackEntry(name, kRegistered);
}

void UntrackSegment(absl::string_view name) { UntrackEntry(name, kRegistered); }

absl::Status TrackPrefix(absl::string_view prefix) {
  if (prefix.empty() || prefix.size() >= kNameCapacity ||
      prefix.find('/') != absl::string_view::npos ||
      prefix.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("shm tracker: bad name prefix '", prefix, "'"));
  }
  return TrackEntry(prefix, kPrefix);
}

void UntrackPrefix(absl::string_view prefix) { UntrackEntry(prefix, kPrefix); }

void UseCloneTrackerForTesting() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_clone_only = true;
}

pid_t TrackerPid() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_table == nullptr || g_table_pid != ::getpid()) return 0;
  return g_table->tracker_pid.load();
}

}  // namespace shm_internal
}  // namespace mp
