// -----------------------------------------------------------------------------
// File: process/leak_check.h
// -----------------------------------------------------------------------------
//
// Test-only. `mp::testing::LeakCheck` snapshots what a test could leak — open
// fds of this process, live children (zombies included), and `/dev/shm`
// entries with a given name prefix — and `Verify()` reports what is new.
//
//   TEST(QueueTest, PutGet) {
//     mp::testing::LeakCheck leaks;
//     ... start processes, make queues ...
//     EXPECT_TRUE(leaks.Verify().ok());   // no fd, child or segment left
//   }
//
// Children are looked up by their parent pid in /proc, so the check also
// sees orphans we still parent; grandchildren re-parented to init are found by
// the process group when `track_process_group` is set.

#ifndef MP_PROCESS_LEAK_CHECK_H_
#define MP_PROCESS_LEAK_CHECK_H_

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace mp {
namespace testing {

// Open fd numbers of this process (from /proc/self/fd).
std::set<int> OpenFds();

// Pids whose parent is this process (from /proc/*/stat), zombies included.
std::set<pid_t> ChildPids();

// Names in /dev/shm that start with `prefix`.
std::set<std::string> ShmEntries(const std::string& prefix);

class LeakCheck {
 public:
  // `shm_prefix`: /dev/shm entries with this prefix are tracked ("" tracks
  // none, since other tests may run at the same time).
  explicit LeakCheck(std::string shm_prefix = "");

  // LeakCheck::Verify()
  //
  // Waits up to `grace` for children and fds to go (asynchronous teardown),
  // then returns `kInternal` listing every fd, child and segment that is new
  // since construction, or OK.
  absl::Status Verify(absl::Duration grace = absl::Seconds(2)) const;

 private:
  std::string shm_prefix_;
  std::set<int> fds_;
  std::set<pid_t> children_;
  std::set<std::string> shm_;
};

}  // namespace testing
}  // namespace mp

#endif  // MP_PROCESS_LEAK_CHECK_H_
