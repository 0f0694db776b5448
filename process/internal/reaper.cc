#include "process/internal/reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "process/internal/runtime.h"

namespace mp {
namespace process_internal {
namespace {

struct Item {
  pid_t pid;
  UniqueFd sentinel;
};

// Leaked on purpose (the thread may outlive static destruction); replaced,
// not reset, in a forked child, where another thread may have held `mu`.
struct Reaper {
  pid_t owner = 0;
  std::mutex mu;
  std::vector<Item> items;
  bool running = false;
  UniqueFd wake_read, wake_write;
};

std::atomic<Reaper*> g_reaper{nullptr};
std::atomic<bool> g_running{false};

// This process's reaper; a fresh one after fork (the parent's children are
// not ours; its thread and lock holder are not here).
Reaper* Get() {
  return ThisProcessOwn(g_reaper, [](Reaper* r) {
    for (Item& item : r->items) item.sentinel.reset();
    r->wake_read.reset();
    r->wake_write.reset();
    g_running.store(false);
  });
}

// Reaps `pid` if it ended; true when it is gone (reaped or not ours).
bool TryReap(pid_t pid) {
  int status;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  return r != 0;
}

void Loop(Reaper* rp) {
  std::vector<pollfd> fds;
  for (;;) {
    bool need_timeout = false;
    {
      std::lock_guard<std::mutex> lock(rp->mu);
      // Reap what ended, drop it.
      for (size_t i = 0; i < rp->items.size();) {
        if (TryReap(rp->items[i].pid)) {
          rp->items.erase(rp->items.begin() + i);
        } else {
          ++i;
        }
      }
      if (rp->items.empty()) {
        rp->running = false;
        rp->wake_read.reset();
        rp->wake_write.reset();
        g_running.store(false);
        return;
      }
      fds.clear();
      fds.push_back({rp->wake_read.get(), POLLIN, 0});
      for (Item& item : rp->items) {
        if (item.sentinel.valid()) {
          fds.push_back({item.sentinel.get(), POLLIN, 0});
        } else {
          need_timeout = true;
        }
      }
    }
    int n = ::poll(fds.data(), fds.size(), need_timeout ? 100 : -1);
    if (n > 0 && (fds[0].revents & POLLIN)) {
      char buf[64];
      while (::read(rp->wake_read.get(), buf, sizeof(buf)) > 0) {
      }
    }
    if (n > 0) {
      std::lock_guard<std::mutex> lock(rp->mu);
      // A pipe sentinel that fired for a child that did not end (it exec'd
      // another program) would spin: fall back to polling for that one.
      for (size_t k = 1; k < fds.size(); ++k) {
        if (fds[k].revents == 0) continue;
        for (Item& item : rp->items) {
          if (item.sentinel.get() == fds[k].fd && !TryReap(item.pid)) {
            item.sentinel.reset();
          }
        }
      }
    }
  }
}

}  // namespace

void ReapInBackground(pid_t pid, UniqueFd sentinel) {
  Reaper* rp = Get();
  std::lock_guard<std::mutex> lock(rp->mu);
  if (!rp->wake_read.valid()) {
    absl::StatusOr<FdPair> p = MakePipe(O_NONBLOCK);
    if (!p.ok()) {
      // No pipe: reap synchronously rather than leak a zombie.
      int status;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return;
    }
    rp->wake_read = std::move(p->read);
    rp->wake_write = std::move(p->write);
  }
  rp->items.push_back(Item{pid, std::move(sentinel)});
  if (rp->running) {
    char c = 1;
    (void)!::write(rp->wake_write.get(), &c, 1);
    return;
  }
  rp->running = true;
  g_running.store(true);
  std::thread(Loop, rp).detach();
}

bool ReaperRunning() { return g_running.load(std::memory_order_relaxed); }

MP_PROCESS_CHILD_TEXT void ReaperAfterFork() {
  // No allocation here; the next Get() replaces the parent's reaper.
  Reaper* r = g_reaper.load(std::memory_order_acquire);
  if (r != nullptr && r->owner != CachedPid()) {
    for (Item& item : r->items) item.sentinel.reset();
    r->wake_read.reset();
    r->wake_write.reset();
  }
  g_running.store(false);
}

}  // namespace process_internal
}  // namespace mp
