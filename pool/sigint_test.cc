// Ctrl-C while Map() waits: the owner dies of SIGINT at once, its workers
// die with it (no orphan), and nothing is printed by the workers.

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/fd.h"
#include "process/internal/test_util.h"
#include "process/leak_check.h"
#include "process/spawn.h"

namespace mp {
namespace {

std::string HelperPath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* ws = getenv("TEST_WORKSPACE");
  return std::string(srcdir ? srcdir : ".") + "/" + (ws ? ws : "mp") +
         "/pool/sigint_helper";
}

std::string ReadAll(int fd, absl::Duration timeout) {
  std::string out;
  char buf[4096];
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    absl::StatusOr<bool> r = WaitReadable(fd, deadline - absl::Now());
    if (!r.ok() || !*r) break;
    absl::StatusOr<size_t> n = ReadSome(fd, buf, sizeof buf);
    if (!n.ok() || *n == 0) break;
    out.append(buf, *n);
    if (out.find('\n') != std::string::npos && timeout < absl::Seconds(0)) break;
  }
  return out;
}

void RunCtrlC(bool whole_group, const std::string& method = "fork") {
  testing::LeakCheck leaks;
  absl::StatusOr<FdPair> out = MakePipe();
  absl::StatusOr<FdPair> err = MakePipe();
  ASSERT_TRUE(out.ok() && err.ok());
  SpawnOptions opts;
  opts.argv = {HelperPath(), method};
  opts.fds = {{1, out->write.get()}, {2, err->write.get()}};
  opts.new_process_group = true;
  absl::StatusOr<pid_t> pid = Spawn(opts);
  ASSERT_TRUE(pid.ok()) << pid.status();
  out->write.reset();
  err->write.reset();

  // First line: the worker pids.
  std::string line;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (line.find('\n') == std::string::npos && absl::Now() < deadline) {
    char buf[256];
    absl::StatusOr<bool> r = WaitReadable(out->read.get(), absl::Seconds(1));
    if (!r.ok() || !*r) continue;
    absl::StatusOr<size_t> n = ReadSome(out->read.get(), buf, sizeof buf);
    if (!n.ok() || *n == 0) break;
    line.append(buf, *n);
  }
  std::vector<std::string> parts =
      absl::StrSplit(line.substr(0, line.find('\n')), ' ', absl::SkipEmpty());
  ASSERT_EQ(parts.size(), 3u) << line;
  std::vector<int64_t> workers;
  for (size_t i = 1; i < parts.size(); ++i) {
    int64_t w;
    ASSERT_TRUE(absl::SimpleAtoi(parts[i], &w));
    workers.push_back(w);
  }
  absl::SleepFor(absl::Milliseconds(200));  // Map() is waiting now

  absl::Time start = absl::Now();
  ASSERT_EQ(kill(whole_group ? -*pid : *pid, SIGINT), 0);
  absl::StatusOr<int> code = WaitPid(*pid);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, -SIGINT);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  for (int64_t w : workers) {
    absl::Time until = absl::Now() + absl::Seconds(5);
    const auto worker = static_cast<pid_t>(w);
    while (!testing::ProcessGoneOrZombie(worker) && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    EXPECT_TRUE(testing::ProcessGoneOrZombie(worker))
        << "worker " << w << " outlived the pool's owner";
  }
  std::string rest = ReadAll(out->read.get(), absl::Seconds(2));
  EXPECT_EQ(rest.find("map returned"), std::string::npos) << rest;
  std::string errors = ReadAll(err->read.get(), absl::Seconds(2));
  EXPECT_EQ(errors, "") << "workers printed: " << errors;
  out->read.reset();
  err->read.reset();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(PoolSigintTest, CtrlCToTheProcessGroupStopsEverythingQuietly) {
  RunCtrlC(/*whole_group=*/true);
}

TEST(PoolSigintTest, SigintToTheOwnerOnlyStillEndsTheWorkers) {
  RunCtrlC(/*whole_group=*/false);
}

TEST(PoolSigintTest, SpawnWorkers) {
  RunCtrlC(/*whole_group=*/true, "spawn");
  RunCtrlC(/*whole_group=*/false, "spawn");
}

TEST(PoolSigintTest, ForkServerWorkers) {
  RunCtrlC(/*whole_group=*/true, "forkserver");
  RunCtrlC(/*whole_group=*/false, "forkserver");
}

}  // namespace
}  // namespace mp
