// -----------------------------------------------------------------------------
// File: sync/internal/test_util.h
// -----------------------------------------------------------------------------
//
// Test-only helpers for //sync and //shm tests: a MAP_SHARED anonymous
// mapping for fork children, fork/wait shorthands, and running
// sync_test_helper (a separately exec'd program that attaches by name).

#ifndef MP_SYNC_INTERNAL_TEST_UTIL_H_
#define MP_SYNC_INTERNAL_TEST_UTIL_H_

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "process/fd.h"
#include "process/internal/test_util.h"
#include "process/spawn.h"
#include "process/spin.h"
#include "sync/internal/futex.h"
#include "sync/lock.h"

namespace mp {
namespace sync_testing {

// A Lock and the counter it guards (shared with sync_test_helper).
struct CountedLock {
  Lock lock;
  int64_t counter = 0;
};

// One T in an anonymous MAP_SHARED mapping (inherited by fork children).
template <typename T>
class SharedMapping {
 public:
  template <typename... Args>
  explicit SharedMapping(Args&&... args) {
    mem_ = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem_ == MAP_FAILED) std::abort();
    obj_ = new (mem_) T(std::forward<Args>(args)...);
  }
  ~SharedMapping() { ::munmap(mem_, sizeof(T)); }
  SharedMapping(const SharedMapping&) = delete;
  T* get() { return obj_; }
  T* operator->() { return obj_; }
  T& operator*() { return *obj_; }

 private:
  void* mem_;
  T* obj_;
};

// Fork a child that runs a function and reap it (process/internal/test_util.h).
using ::mp::testing::ForkChild;
using ::mp::testing::WaitChild;

// Polls up to 10 s for `pred` (process/internal/test_util.h).
using ::mp::testing::Eventually;

// TurnPingPong()
//
// Two processes take turns 2000 times through a pair of `T` (each built
// from `args`) in shared memory: this one posts `ping` and waits for
// `pong`, a forked child the other way round, with polling before sleeps
// on (`spin`, the default where more than one CPU is allowed) or forced off
// in both. Each side checks the turn counter it was handed, so a lost or
// duplicated hand-over fails the test (or runs into the 10 s waits, which
// fail it too). `post(T&)` returns false on an error, `wait(T&)` on a
// timeout (it waits up to 10 s); `check(ping, pong)` runs at the end.
template <typename T, typename Post, typename WaitFor, typename Check,
          typename... Args>
void TurnPingPong(bool spin, Post post, WaitFor wait, Check check,
                  const Args&... args) {
  struct Pair {
    explicit Pair(const Args&... a) : ping(a...), pong(a...) {}
    T ping;
    T pong;
    int64_t turn = 0;
  };
  SharedMapping<Pair> p(args...);
  // Inherited by the child.
  ::mp::process_internal::SetSpinDisabledForTesting(!spin);
  constexpr int kRounds = 2000;
  pid_t pid = ForkChild([&] {
    for (int i = 0; i < kRounds; ++i) {
      if (!wait(p->ping)) return 1;
      if (p->turn != 2 * i + 1) return 2;
      p->turn = 2 * i + 2;
      if (!post(p->pong)) return 3;
    }
    return 0;
  });
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_EQ(p->turn, 2 * i);
    p->turn = 2 * i + 1;
    ASSERT_TRUE(post(p->ping));
    ASSERT_TRUE(wait(p->pong)) << "round " << i;
  }
  EXPECT_EQ(WaitChild(pid), 0);
  ::mp::process_internal::SetSpinDisabledForTesting(false);
  EXPECT_EQ(p->turn, 2 * kRounds);
  check(p->ping, p->pong);
}

// sync_test_helper, started by exec with its stdout on a pipe.
struct Helper {
  pid_t pid = -1;
  UniqueFd out;
  // Reads one line of the helper's stdout ("" at EOF).
  std::string ReadLine() {
    std::string line;
    char c;
    while (ReadExact(out.get(), &c, 1).ok() && c != '\n') line += c;
    return line;
  }
};

inline Helper StartHelper(std::vector<std::string> args) {
  Helper h;
  absl::StatusOr<FdPair> pipe = MakePipe();
  EXPECT_TRUE(pipe.ok());
  SpawnOptions o;
  o.argv = {absl::StrCat(std::getenv("TEST_SRCDIR"), "/",
                         std::getenv("TEST_WORKSPACE"),
                         "/sync/sync_test_helper")};
  for (std::string& a : args) o.argv.push_back(std::move(a));
  o.fds = {{1, pipe->write.get()}};
  absl::StatusOr<pid_t> pid = Spawn(o);
  EXPECT_TRUE(pid.ok()) << pid.status();
  if (pid.ok()) h.pid = *pid;
  h.out = std::move(pipe->read);
  return h;
}

// Installs a no-op handler (without SA_RESTART) for `sig` while alive, so
// that signals interrupt system calls with EINTR.
class InterruptingHandler {
 public:
  explicit InterruptingHandler(int sig) : sig_(sig) {
    struct sigaction sa = {};
    sa.sa_handler = [](int) {};
    ::sigaction(sig_, &sa, &old_);
  }
  ~InterruptingHandler() { ::sigaction(sig_, &old_, nullptr); }

 private:
  int sig_;
  struct sigaction old_;
};

// Sends `sig` to the thread that made it every 3 ms, from a thread of its
// own, until Stop() or destruction. Installs an InterruptingHandler for `sig`
// meanwhile (restored on destruction), so that blocking calls see EINTR.
//
//   SignalPester pester(SIGUSR1);
//   EXPECT_EQ(sem.Acquire(absl::Milliseconds(150)).code(), kDeadlineExceeded);
//   pester.Stop();
class SignalPester {
 public:
  explicit SignalPester(int sig)
      : handler_(sig), target_(::pthread_self()), thread_([this, sig] {
          while (!stop_) {
            ::pthread_kill(target_, sig);
            absl::SleepFor(absl::Milliseconds(3));
          }
        }) {}
  ~SignalPester() { Stop(); }
  SignalPester(const SignalPester&) = delete;
  SignalPester& operator=(const SignalPester&) = delete;

  // Stops sending and joins the thread (the handler stays until destruction).
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  InterruptingHandler handler_;
  const pthread_t target_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace sync_testing
}  // namespace mp

#endif  // MP_SYNC_INTERNAL_TEST_UTIL_H_
