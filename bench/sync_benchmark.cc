// Benchmarks of //sync against its peers, side by side in one run
// (bench/comparisons/sync.py):
//   * uncontended Lock vs a bare compare-and-swap spin lock and a robust
//     process-shared pthread mutex;
//   * two processes contending (lock, increment, unlock) with mp::Lock vs
//     Boost.Interprocess interprocess_mutex (Python's Lock+Value is in
//     bench/python/sync_bench.py);
//   * Semaphore/Event ping-pong between two processes vs a raw futex
//     ping-pong.
// Children are fork()ed per iteration and reaped before it ends.
#include <linux/futex.h>
#include <sched.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

#include <boost/interprocess/sync/interprocess_mutex.hpp>

#include "benchmark/benchmark.h"
#include "sync/event.h"
#include "sync/internal/futex.h"
#include "sync/lock.h"
#include "sync/semaphore.h"

namespace {

bool Smoke() { return std::getenv("MP_BENCH_SMOKE") != nullptr; }

// One T in a MAP_SHARED anonymous mapping (what fork children share).
template <typename T>
class Shared {
 public:
  Shared() {
    mem_ = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem_ == MAP_FAILED) std::abort();
    obj_ = new (mem_) T();
  }
  ~Shared() {
    obj_->~T();
    munmap(mem_, sizeof(T));
  }
  T* operator->() { return obj_; }
  T& operator*() { return *obj_; }

 private:
  void* mem_;
  T* obj_;
};

// Runs `body` in a forked child and in this process at once; reaps the child.
template <typename F>
void InTwoProcesses(benchmark::State& state, F body) {
  pid_t pid = fork();
  if (pid < 0) {
    state.SkipWithError("fork failed");
    return;
  }
  if (pid == 0) {
    body(/*child=*/true);
    _exit(0);
  }
  body(/*child=*/false);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    state.SkipWithError("child failed");
  }
}

// --- Uncontended ------------------------------------------------------------

void BM_LockUncontended(benchmark::State& state) {
  Shared<mp::Lock> lock;
  for (auto _ : state) {
    (void)lock->Acquire();
    (void)lock->Release();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LockUncontended);

struct CasLock {
  std::atomic<uint32_t> word{0};
  void lock() {
    uint32_t expected = 0;
    while (!word.compare_exchange_weak(expected, 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      expected = 0;
    }
  }
  void unlock() { word.store(0, std::memory_order_release); }
};

void BM_CasSpinLockUncontended(benchmark::State& state) {
  Shared<CasLock> lock;
  for (auto _ : state) {
    lock->lock();
    benchmark::ClobberMemory();
    lock->unlock();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CasSpinLockUncontended);

// For reference: the same CAS lock with an atomic exchange to unlock (what
// any lock that must notice sleeping waiters needs).
void BM_CasXchgLockUncontended(benchmark::State& state) {
  Shared<CasLock> lock;
  for (auto _ : state) {
    lock->lock();
    benchmark::ClobberMemory();
    lock->word.exchange(0, std::memory_order_release);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CasXchgLockUncontended);

struct RobustPthreadMutex {
  RobustPthreadMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&mu, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  ~RobustPthreadMutex() { pthread_mutex_destroy(&mu); }
  pthread_mutex_t mu;
};

void BM_RobustPthreadMutexUncontended(benchmark::State& state) {
  Shared<RobustPthreadMutex> m;
  for (auto _ : state) {
    pthread_mutex_lock(&m->mu);
    pthread_mutex_unlock(&m->mu);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RobustPthreadMutexUncontended);

// --- Two processes contending -------------------------------------------------

int ContendedOps() { return Smoke() ? 200 : 200000; }

template <typename L>
struct Counted {
  L lock;
  int64_t counter = 0;
  // Start gate: both processes begin their loops together, so that they
  // contend from the first increment (otherwise the parent runs alone
  // while the child is still being forked).
  std::atomic<uint32_t> ready{0};
};

// Waits until both processes are at the gate (reset by the caller per
// iteration).
inline void StartTogether(std::atomic<uint32_t>& ready) {
  ready.fetch_add(1);
  while (ready.load(std::memory_order_acquire) < 2) sched_yield();
}

void BM_LockContended2Proc(benchmark::State& state) {
  Shared<Counted<mp::Lock>> c;
  const int n = ContendedOps();
  for (auto _ : state) {
    c->ready.store(0);
    InTwoProcesses(state, [&](bool) {
      StartTogether(c->ready);
      for (int i = 0; i < n; ++i) {
        (void)c->lock.Acquire();
        ++c->counter;
        (void)c->lock.Release();
      }
    });
  }
  if (c->counter != static_cast<int64_t>(state.iterations()) * 2 * n) {
    state.SkipWithError("lost increments");
  }
  state.SetItemsProcessed(state.iterations() * 2 * n);
}
BENCHMARK(BM_LockContended2Proc)->UseRealTime();

void BM_BoostInterprocessMutexContended2Proc(benchmark::State& state) {
  Shared<Counted<boost::interprocess::interprocess_mutex>> c;
  const int n = ContendedOps();
  for (auto _ : state) {
    c->ready.store(0);
    InTwoProcesses(state, [&](bool) {
      StartTogether(c->ready);
      for (int i = 0; i < n; ++i) {
        c->lock.lock();
        ++c->counter;
        c->lock.unlock();
      }
    });
  }
  if (c->counter != static_cast<int64_t>(state.iterations()) * 2 * n) {
    state.SkipWithError("lost increments");
  }
  state.SetItemsProcessed(state.iterations() * 2 * n);
}
BENCHMARK(BM_BoostInterprocessMutexContended2Proc)->UseRealTime();

// --- Ping-pong ----------------------------------------------------------------

int Rounds() { return Smoke() ? 100 : 20000; }

struct SemaphorePair {
  mp::Semaphore ping{0};
  mp::Semaphore pong{0};
};

void BM_SemaphorePingPong(benchmark::State& state) {
  Shared<SemaphorePair> p;
  const int n = Rounds();
  for (auto _ : state) {
    InTwoProcesses(state, [&](bool child) {
      for (int i = 0; i < n; ++i) {
        if (child) {
          (void)p->ping.Acquire();
          (void)p->pong.Release();
        } else {
          (void)p->ping.Release();
          (void)p->pong.Acquire();
        }
      }
    });
  }
  state.SetItemsProcessed(state.iterations() * n);  // round trips
}
BENCHMARK(BM_SemaphorePingPong)->UseRealTime();

struct EventPair {
  mp::Event ping;
  mp::Event pong;
};

void BM_EventPingPong(benchmark::State& state) {
  Shared<EventPair> p;
  const int n = Rounds();
  for (auto _ : state) {
    InTwoProcesses(state, [&](bool child) {
      for (int i = 0; i < n; ++i) {
        if (child) {
          p->ping.Wait();
          p->ping.Clear();
          p->pong.Set();
        } else {
          p->ping.Set();
          p->pong.Wait();
          p->pong.Clear();
        }
      }
    });
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_EventPingPong)->UseRealTime();

// The floor: one futex word, each side waits for its turn and wakes the
// other with one FUTEX_WAKE.
long RawFutex(std::atomic<uint32_t>* w, int op, uint32_t val) {
  return syscall(SYS_futex, w, op, val, nullptr, nullptr, 0);
}

void BM_RawFutexPingPong(benchmark::State& state) {
  Shared<std::atomic<uint32_t>> turn;
  const int n = Rounds();
  for (auto _ : state) {
    turn->store(0);
    InTwoProcesses(state, [&](bool child) {
      const uint32_t mine = child ? 1 : 0;
      for (int i = 0; i < n; ++i) {
        uint32_t v;
        while ((v = turn->load(std::memory_order_acquire)) != mine) {
          RawFutex(turn.operator->(), FUTEX_WAIT, v);
        }
        turn->store(1 - mine, std::memory_order_release);
        RawFutex(turn.operator->(), FUTEX_WAKE, 1);
      }
    });
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_RawFutexPingPong)->UseRealTime();

}  // namespace
