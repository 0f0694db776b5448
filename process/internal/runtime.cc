#include "process/internal/runtime.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <ext/stdio_sync_filebuf.h>
#include <iostream>
#include <string>
#include <typeinfo>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "process/exception_name.h"
#include "process/internal/forkserver.h"
#include "process/internal/reaper.h"
#include "process/register.h"

namespace mp {
namespace process_internal {

namespace {

constexpr char kBootEnv[] = "MP_PROCESS_BOOT";

// ---- registry (constant-initialised: used from constructors) --------------

std::atomic<Registration*> g_registrations{nullptr};
std::atomic<int> g_registration_count{0};

// ---- who we are ------------------------------------------------------------

std::atomic<const Self*> g_self{nullptr};
// The pid cache: a fork child only bumps the generation (no system call on
// the child's path); the next CachedPid() there calls getpid().
std::atomic<unsigned> g_fork_generation{0};  // near g_self: a child writes both
std::atomic<unsigned> g_pid_generation{~0u};
std::atomic<pid_t> g_pid{0};

MP_PROCESS_CHILD_TEXT void OnForkChild() {
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
}

const Self& MainSelf() {
  static const Self* self = new Self;
  return *self;
}


// ---- boot of a spawned child / forkserver ----------------------------------

struct Boot {
  bool present = false;
  bool started = false;
  bool forkserver = false;
  int fd = -1;
  int expected = 0;
};

Boot ParseBoot() {
  Boot b;
  const char* v = std::getenv(kBootEnv);
  if (v == nullptr) return b;
  std::vector<std::string> parts = absl::StrSplit(v, ':');
  if (parts.size() != 3 || (parts[0] != "spawn" && parts[0] != "forkserver") ||
      !absl::SimpleAtoi(parts[1], &b.fd) ||
      !absl::SimpleAtoi(parts[2], &b.expected)) {
    std::fprintf(stderr, "mp: ignoring malformed %s=%s\n", kBootEnv, v);
    return b;
  }
  b.present = true;
  b.forkserver = parts[0] == "forkserver";
  return b;
}

Boot& GetBoot() {
  static Boot boot = ParseBoot();
  return boot;
}

[[noreturn]] void RunSpawnChild(int fd) noexcept {
  std::string bytes;
  bool read_ok = ReadAll(fd, &bytes);
  ::close(fd);
  if (!read_ok) {
    std::fprintf(stderr, "mp: spawned child: cannot read its payload: %s\n",
                 std::strerror(errno));
    ::_exit(1);
  }
  absl::StatusOr<ChildPayload> payload = Decode<ChildPayload>(bytes);
  if (!payload.ok()) {
    std::fprintf(stderr, "mp: spawned child: bad payload: %s\n",
                 payload.status().ToString().c_str());
    ::_exit(1);
  }
  if (payload->sentinel_fd >= 0) {
    ::fcntl(payload->sentinel_fd, F_SETFD, FD_CLOEXEC);
  }
  BecomeChild(new Self{payload->name, payload->identity, payload->daemon,
                       true, payload->parent_pid, payload->parent_name});
  RunPayloadAndExit(*payload);
}

void MaybeBoot() {
  Boot& boot = GetBoot();
  if (!boot.present || boot.started) return;
  if (g_registration_count.load() < boot.expected) return;
  boot.started = true;
  ::unsetenv(kBootEnv);
  if (boot.forkserver) RunForkServer(boot.fd);
  RunSpawnChild(boot.fd);
}

// Covers programs without registrations (a forkserver started early).
__attribute__((constructor(101))) void BootWithoutRegistrations() {
  MaybeBoot();
}

}  // namespace

// ---- register.h ------------------------------------------------------------

void AddRegistration(Registration* r) {
  Registration* head = g_registrations.load();
  do {
    r->next = head;
  } while (!g_registrations.compare_exchange_weak(head, r));
  g_registration_count.fetch_add(1);
  MaybeBoot();
}

const Registration* FindRegistrationByAddress(const void* fn) {
  for (Registration* r = g_registrations.load(); r != nullptr; r = r->next) {
    if (r->fn == fn) return r;
  }
  return nullptr;
}

const Registration* FindRegistrationByName(absl::string_view name) {
  for (Registration* r = g_registrations.load(); r != nullptr; r = r->next) {
    if (name == r->name) return r;
  }
  return nullptr;
}

int RegistrationCount() { return g_registration_count.load(); }

void ReportBadArguments(const absl::Status& status) {
  std::fprintf(stderr, "Process %s: cannot decode the arguments: %s\n",
               CurrentSelf().name.c_str(), status.ToString().c_str());
}

int ExitCodeForStatus(const absl::Status& status) {
  if (status.ok()) return 0;
  FlushStdio();
  std::fprintf(stderr, "Process %s: %s\n", CurrentSelf().name.c_str(),
               status.ToString().c_str());
  return 1;
}

// ---- runtime.h -------------------------------------------------------------

pid_t CachedPid() noexcept {
  static const bool registered = [] {
    ::pthread_atfork(nullptr, nullptr, OnForkChild);
    return true;
  }();
  (void)registered;
  const unsigned generation = g_fork_generation.load(std::memory_order_relaxed);
  if (g_pid_generation.load(std::memory_order_acquire) != generation) {
    g_pid.store(::getpid(), std::memory_order_relaxed);
    g_pid_generation.store(generation, std::memory_order_release);
  }
  return g_pid.load(std::memory_order_relaxed);
}

const Self& CurrentSelf() {
  const Self* self = g_self.load(std::memory_order_acquire);
  return self != nullptr ? *self : MainSelf();
}


MP_PROCESS_CHILD_TEXT void BecomeChild(const Self* self) {
  g_self.store(self, std::memory_order_release);
  ForkServerAfterFork();
  ReaperAfterFork();
}

// External linkage and volatile: the stores must not be optimised away, or
// LeakSanitizer (in a child that calls exit()) reports the abandoned state.
extern void* volatile g_mp_abandoned[64];
void* volatile g_mp_abandoned[64];
std::atomic<int> g_abandoned_count{0};

void Abandon(void* p) noexcept {
  if (p == nullptr) return;
  int i = g_abandoned_count.fetch_add(1);
  if (i < 64) g_mp_abandoned[i] = p;
}

namespace {

// Pending output of a FILE, without a call (glibc's __fpending(), inline).
inline bool HasPendingOutput(FILE* f) {
  return f->_IO_write_ptr > f->_IO_write_base;
}

// The stream buffers last seen to be stdio-synced (std::cout's and
// std::clog's by default), remembered in the parent so that the child
// need not run dynamic_cast (more code pages to fault in).
std::atomic<std::streambuf*> g_synced_out{nullptr};
std::atomic<std::streambuf*> g_synced_log{nullptr};

MP_PROCESS_CHILD_TEXT void FlushIfBuffered(
    std::ostream& os, std::atomic<std::streambuf*>& known) {
  std::streambuf* buf = os.rdbuf();
  if (buf == nullptr || buf == known.load(std::memory_order_relaxed)) return;
  if (dynamic_cast<__gnu_cxx::stdio_sync_filebuf<char>*>(buf) != nullptr) {
    known.store(buf, std::memory_order_relaxed);
    return;  // writes straight through to stdio
  }
  try {
    os.flush();
  } catch (...) {
  }
}

}  // namespace

MP_PROCESS_CHILD_TEXT void FlushStdio() noexcept {
  // Only what has pending output is flushed: taking a FILE's lock writes to
  // it, and every page a fork child writes is a page copied.
  if (HasPendingOutput(stdout)) std::fflush(stdout);
  if (HasPendingOutput(stderr)) std::fflush(stderr);
  // With the default sync_with_stdio(true), std::cout and std::clog write
  // straight through to stdout and stderr; otherwise they have buffers.
  FlushIfBuffered(std::cout, g_synced_out);
  FlushIfBuffered(std::clog, g_synced_log);
}

MP_PROCESS_CHILD_TEXT void RunAndExit(int (*body)(void*), void* arg) noexcept {
  int code = 0;
  try {
    code = body(arg);
  } catch (const std::exception& e) {
    FlushStdio();
    std::fprintf(stderr, "Process %s: %s: %s\n", CurrentSelf().name.c_str(),
                 DemangledTypeName(typeid(e).name()).c_str(), e.what());
    code = 1;
  } catch (...) {
    FlushStdio();
    std::fprintf(stderr, "Process %s: unknown exception\n",
                 CurrentSelf().name.c_str());
    code = 1;
  }
  FlushStdio();
  ::_exit(code);
}

void RunPayloadAndExit(const ChildPayload& payload) noexcept {
  // A spawned or forkserver child runs before the program's ordinary
  // constructors; in a statically linked program that includes the one that
  // constructs std::cout and friends. This makes sure they exist.
  std::ios_base::Init ios_init;
  const Registration* r = FindRegistrationByName(payload.function);
  if (r == nullptr) {
    std::fprintf(stderr, "Process %s: no function registered as \"%s\"\n",
                 payload.name.c_str(), payload.function.c_str());
    FlushStdio();
    ::_exit(1);
  }
  struct Call {
    const Registration* r;
    const ChildPayload* payload;
  } call{r, &payload};
  RunAndExit(
      [](void* arg) {
        auto* c = static_cast<Call*>(arg);
        return c->r->invoke(c->r->fn, c->payload->args);
      },
      &call);
}

std::string BootEnvEntry(absl::string_view mode, int fd) {
  return absl::StrCat(kBootEnv, "=", mode, ":", fd, ":", RegistrationCount());
}

bool BootPending() {
  Boot& boot = GetBoot();
  return boot.present && !boot.started;
}

void CheckNotBootPending() {
  if (!BootPending()) return;
  std::fprintf(stderr,
               "mp: this program was started as a %s child but found only %d "
               "of its %d MP_REGISTER registrations before main(); are some "
               "in a dlopen()ed library? Aborting.\n",
               GetBoot().forkserver ? "forkserver" : "spawn",
               RegistrationCount(), GetBoot().expected);
  std::abort();
}

bool ReadAll(int fd, std::string* out) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
  }
}

}  // namespace process_internal
}  // namespace mp
