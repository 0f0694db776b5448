// Test helper for //sync tests: a separately exec'd process (like a spawn or
// forkserver child) that attaches to a primitive by its segment name.
//   sync_test_helper lock-hold NAME        acquire a Lock, print "held", hang
//   sync_test_helper rlock-hold NAME       acquire an RLock twice, likewise
//   sync_test_helper lock-count NAME N     N x (Acquire, ++counter, Release)
//   sync_test_helper event-set NAME        Set an Event
//   sync_test_helper sem-release NAME      Release a Semaphore
//   sync_test_helper barrier-wait NAME     Wait at a Barrier, print the index
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sync/internal/test_util.h"
#include "sync/sync.h"

namespace {

using mp::sync_testing::CountedLock;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "sync_test_helper: %s\n", s.ToString().c_str());
  return 1;
}

template <typename T>
int Run(const char* name, int (*body)(T&)) {
  absl::StatusOr<mp::SharedObject<T>> obj = mp::SharedObject<T>::Attach(name);
  if (!obj.ok()) return Fail(obj.status());
  return body(**obj);
}

void Say(const char* what) {
  std::printf("%s\n", what);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string mode = argv[1];
  const char* name = argv[2];
  if (mode == "lock-hold") {
    return Run<mp::Lock>(name, [](mp::Lock& l) {
      absl::Status s = l.Acquire();
      if (!s.ok()) return Fail(s);
      Say("held");
      for (;;) pause();
      return 0;
    });
  }
  if (mode == "rlock-hold") {
    return Run<mp::RLock>(name, [](mp::RLock& l) {
      if (!l.Acquire().ok() || !l.Acquire().ok()) return 1;
      Say("held");
      for (;;) pause();
      return 0;
    });
  }
  if (mode == "lock-count" && argc == 4) {
    static int n = std::atoi(argv[3]);
    return Run<CountedLock>(name, [](CountedLock& c) {
      for (int i = 0; i < n; ++i) {
        absl::Status s = c.lock.Acquire();
        if (!s.ok()) return Fail(s);
        ++c.counter;
        c.lock.Release().IgnoreError();
      }
      return 0;
    });
  }
  if (mode == "event-set") {
    return Run<mp::Event>(name, [](mp::Event& e) {
      e.Set();
      return 0;
    });
  }
  if (mode == "sem-release") {
    return Run<mp::Semaphore>(name, [](mp::Semaphore& s) {
      absl::Status st = s.Release();
      return st.ok() ? 0 : Fail(st);
    });
  }
  if (mode == "barrier-wait") {
    return Run<mp::Barrier>(name, [](mp::Barrier& b) {
      absl::StatusOr<int> i = b.Wait(absl::Seconds(20));
      if (!i.ok()) return Fail(i.status());
      std::printf("%d\n", *i);
      return 0;
    });
  }
  return 2;
}
