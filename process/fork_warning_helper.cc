// Test helper for process_test: starts processes with the fork start method
// while another thread runs; Process must warn on stderr, once.
//
//   fork_warning_helper <threads: 0|1>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

#include "process/process.h"

int main(int argc, char** argv) {
  bool threaded = argc > 1 && std::strcmp(argv[1], "1") == 0;
  std::atomic<bool> stop{false};
  std::thread t;
  if (threaded) {
    t = std::thread([&stop] {
      while (!stop.load()) std::this_thread::yield();
    });
  }
  int failures = 0;
  for (int i = 0; i < 3; ++i) {
    mp::Process p([] { return 0; });
    if (!p.Start().ok() || !p.Join().ok() || p.exitcode() != 0) ++failures;
  }
  stop = true;
  if (t.joinable()) t.join();
  return failures;
}
