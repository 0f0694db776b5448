// -----------------------------------------------------------------------------
// File: process/internal/runtime.h
// -----------------------------------------------------------------------------
//
// Per-process state of mp's process layer and the child side of every start
// method: who this process is (name, identity, daemon flag, parent), running
// a target and `_exit()`ing, and the boot of a spawned child or a forkserver
// (driven by the registrations in `process/register.h`).

#ifndef MP_PROCESS_INTERNAL_RUNTIME_H_
#define MP_PROCESS_INTERNAL_RUNTIME_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ipc/codec.h"

// Places a function of the fork child's path next to the others: a forked
// child has no page-table entries for the program's code yet, so each code
// page it touches costs a page fault. The default linker script groups
// `.text.hot*` sections together.
#define MP_PROCESS_CHILD_TEXT \
  __attribute__((section(".text.hot.mp_process_child"), noinline))

namespace mp {
namespace process_internal {

// What a spawned or forkserver child is told about itself.
struct ChildPayload {
  std::string function;
  std::string name;
  std::vector<int32_t> identity;
  bool daemon = false;
  int32_t parent_pid = 0;
  std::string parent_name;
  std::string args;
  // Spawned child without pidfd support: the fd of the sentinel pipe it
  // holds (made close-on-exec at boot, so programs it execs do not hold
  // it); -1 otherwise.
  int32_t sentinel_fd = -1;
  MP_CODEC_FIELDS(function, name, identity, daemon, parent_pid, parent_name,
                  args, sentinel_fd);
};

// Who this process is. Written only at startup of a child (single-threaded
// then); read anywhere.
struct Self {
  std::string name = "MainProcess";
  std::vector<int32_t> identity;  // () for the main process, (1, 2) for ...
  bool daemon = false;
  bool is_child = false;
  pid_t parent_pid = 0;
  std::string parent_name;
};
const Self& CurrentSelf();

// getpid(), cached. A pthread_atfork() child handler invalidates the cache,
// so it is right after any fork() through glibc, raw ones included.
pid_t CachedPid() noexcept;

// Called in a new child (fork start method, forkserver worker, spawned
// child) before the target runs: makes `*self` (never freed in the child)
// the answer of `CurrentSelf()`, restarts the child counter, and drops
// per-process state inherited from the parent. Allocates nothing: for the
// fork start method the parent builds `self` before forking, so the child
// touches (and copies) as few pages as possible.
void BecomeChild(const Self* self);

// Runs `body(arg)` (which returns the exit code and may throw), reports an
// exception as `Process <name>: <type>: <what>`, flushes stdout and stderr,
// and `_exit()`s. (A plain function pointer: no template code for the fork
// child to fault in.)
[[noreturn]] void RunAndExit(int (*body)(void*), void* arg) noexcept;

// Runs the registered function of `payload` with its arguments and exits.
[[noreturn]] void RunPayloadAndExit(const ChildPayload& payload) noexcept;

// The environment entry that makes the exec'ed program a spawned child
// ("spawn") or a forkserver ("forkserver") reading from fd `fd`, once it
// counted `RegistrationCount()` registrations.
std::string BootEnvEntry(absl::string_view mode, int fd);

// True in a program that was started as a child or forkserver but did not
// find its registrations before `main` (then it must not go on as itself).
bool BootPending();

// Aborts with a message when `BootPending()`.
void CheckNotBootPending();

// Reads a whole (small) file-like fd from its current offset.
bool ReadAll(int fd, std::string* out);

// Keeps `p` reachable from a global, for state a forked child abandons (its
// locks may be held by threads that do not exist there) but must not free
// or report as leaked.
void Abandon(void* p) noexcept;

// ThisProcessOwn()
//
// The T in `*slot` if this process made it; else (first use, or first use
// after a fork) a fresh T with `owner` set to this pid, swapped in. The old
// one, a forked parent's, is passed to `retire` (to drop what a child must
// not keep, e.g. fds), then `Abandon()`ed: never freed, as its lock may be
// held by a thread that is not here. Lock-free; T has a `pid_t owner`.
template <typename T, typename Retire>
T* ThisProcessOwn(std::atomic<T*>& slot, Retire retire) {
  const pid_t me = CachedPid();
  for (;;) {
    T* old = slot.load(std::memory_order_acquire);
    if (old != nullptr && old->owner == me) return old;
    auto* fresh = new T;
    fresh->owner = me;
    if (slot.compare_exchange_strong(old, fresh)) {
      if (old != nullptr) {
        retire(old);
        Abandon(old);
      }
      return fresh;
    }
    delete fresh;
  }
}

// Flushes stdout and stderr (C and C++ streams), as Python flushes
// sys.stdout and sys.stderr around fork and at a child's exit.
void FlushStdio() noexcept;

}  // namespace process_internal
}  // namespace mp

#endif  // MP_PROCESS_INTERNAL_RUNTIME_H_
