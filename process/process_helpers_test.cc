// Tests of mp::Process that need a separate parent program: daemon children
// of a SIGKILLed parent, and the threaded-fork warning.

#include <signal.h>
#include <unistd.h>

#include <set>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "process/fd.h"
#include "process/internal/test_util.h"
#include "process/leak_check.h"
#include "process/spawn.h"

namespace {

std::string Helper(const char* name) {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/mp/process/", name);
}

// Runs `argv`, capturing fd `fd` (1 or 2); returns the pid and the read end.
struct Running {
  pid_t pid = 0;
  mp::UniqueFd out;
};

Running Start(std::vector<std::string> argv, int fd) {
  Running r;
  absl::StatusOr<mp::FdPair> p = mp::MakePipe();
  EXPECT_TRUE(p.ok());
  if (!p.ok()) return r;
  mp::SpawnOptions opts;
  opts.argv = std::move(argv);
  opts.fds = {{fd, p->write.get()}};
  absl::StatusOr<pid_t> pid = mp::Spawn(opts);
  EXPECT_TRUE(pid.ok()) << pid.status();
  if (!pid.ok()) return r;
  r.pid = *pid;
  r.out = std::move(p->read);
  return r;
}

std::string ReadLine(int fd) {
  std::string line;
  char c;
  while (true) {
    absl::StatusOr<size_t> n = mp::ReadSome(fd, &c, 1);
    if (!n.ok() || *n == 0 || c == '\n') break;
    line += c;
  }
  return line;
}

std::string ReadAll(int fd) {
  std::string all;
  char buf[4096];
  while (true) {
    absl::StatusOr<size_t> n = mp::ReadSome(fd, buf, sizeof(buf));
    if (!n.ok() || *n == 0) break;
    all.append(buf, *n);
  }
  return all;
}

bool GoneWithin(pid_t pid, absl::Duration d) {
  absl::Time deadline = absl::Now() + d;
  while (absl::Now() < deadline) {
    if (mp::testing::ProcessGoneOrZombie(pid)) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return mp::testing::ProcessGoneOrZombie(pid);
}

class DaemonTest : public ::testing::TestWithParam<const char*> {};

INSTANTIATE_TEST_SUITE_P(AllStartMethods, DaemonTest,
                         ::testing::Values("fork", "forkserver", "spawn"),
                         [](const ::testing::TestParamInfo<const char*>& i) {
                           return std::string(i.param);
                         });

TEST_P(DaemonTest, DaemonChildDiesWithItsSigkilledParent) {
  mp::testing::LeakCheck leaks;
  Running parent = Start({Helper("daemon_parent_helper"), GetParam(), "1"}, 1);
  ASSERT_GT(parent.pid, 0);
  int child = 0;
  ASSERT_TRUE(absl::SimpleAtoi(ReadLine(parent.out.get()), &child));
  ASSERT_GT(child, 0);
  EXPECT_FALSE(mp::testing::ProcessGoneOrZombie(child));
  ASSERT_EQ(::kill(parent.pid, SIGKILL), 0);
  absl::StatusOr<int> code = mp::WaitPid(parent.pid);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, -SIGKILL);
  EXPECT_TRUE(GoneWithin(child, absl::Seconds(10)));
  if (!mp::testing::ProcessGoneOrZombie(child)) ::kill(child, SIGKILL);
  parent.out.reset();
  absl::Status s = leaks.Verify();
  EXPECT_TRUE(s.ok()) << s;
}

TEST_P(DaemonTest, NonDaemonChildOutlivesItsSigkilledParent) {
  mp::testing::LeakCheck leaks;
  Running parent = Start({Helper("daemon_parent_helper"), GetParam(), "0"}, 1);
  ASSERT_GT(parent.pid, 0);
  int child = 0;
  ASSERT_TRUE(absl::SimpleAtoi(ReadLine(parent.out.get()), &child));
  ASSERT_EQ(::kill(parent.pid, SIGKILL), 0);
  ASSERT_TRUE(mp::WaitPid(parent.pid).ok());
  // Give a wrongly delivered death signal time to act.
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(mp::testing::ProcessGoneOrZombie(child));
  ::kill(child, SIGKILL);  // ours to end: we started it (indirectly)
  EXPECT_TRUE(GoneWithin(child, absl::Seconds(10)));
  parent.out.reset();
  absl::Status s = leaks.Verify();
  EXPECT_TRUE(s.ok()) << s;
}

int CountOccurrences(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos;
       pos = text.find(what, pos + 1)) {
    ++n;
  }
  return n;
}

TEST(ForkWarningTest, ForkingWithThreadsWarnsOnce) {
  mp::testing::LeakCheck leaks;
  Running r = Start({Helper("fork_warning_helper"), "1"}, 2);
  ASSERT_GT(r.pid, 0);
  std::string err = ReadAll(r.out.get());
  absl::StatusOr<int> code = mp::WaitPid(r.pid);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(CountOccurrences(err, "is multi-threaded"), 1) << err;
  EXPECT_NE(err.find("forkserver or spawn"), std::string::npos) << err;
  r.out.reset();
  absl::Status s = leaks.Verify();
  EXPECT_TRUE(s.ok()) << s;
}

TEST(ForkWarningTest, SingleThreadedForkDoesNotWarn) {
  Running r = Start({Helper("fork_warning_helper"), "0"}, 2);
  ASSERT_GT(r.pid, 0);
  std::string err = ReadAll(r.out.get());
  absl::StatusOr<int> code = mp::WaitPid(r.pid);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(err, "");
}

// ---- the boot environment variable, with bad values ------------------------

// Runs fork_warning_helper (no MP_REGISTER in it) with `boot` as
// MP_PROCESS_BOOT and `input` on fd 3; returns {exit code, stderr}.
std::pair<int, std::string> RunWithBoot(const std::string& boot,
                                        const std::string& input) {
  absl::StatusOr<mp::FdPair> err = mp::MakePipe();
  absl::StatusOr<mp::FdPair> in = mp::MakePipe();
  EXPECT_TRUE(err.ok() && in.ok());
  if (!err.ok() || !in.ok()) return {-1000, ""};
  EXPECT_TRUE(mp::WriteAll(in->write.get(), input).ok());
  in->write.reset();
  mp::SpawnOptions opts;
  opts.argv = {Helper("fork_warning_helper"), "0"};
  opts.env = std::vector<std::string>{"MP_PROCESS_BOOT=" + boot};
  opts.fds = {{2, err->write.get()}, {3, in->read.get()}};
  absl::StatusOr<pid_t> pid = mp::Spawn(opts);
  EXPECT_TRUE(pid.ok()) << pid.status();
  if (!pid.ok()) return {-1000, ""};
  err->write.reset();
  std::string text = ReadAll(err->read.get());
  absl::StatusOr<int> code = mp::WaitPid(*pid);
  EXPECT_TRUE(code.ok());
  return {code.ok() ? *code : -1000, text};
}

TEST(BootTest, MalformedBootVariableIsIgnored) {
  for (const char* boot : {"", "spawn", "spawn:x:0", "fork:3:0", "spawn:3"}) {
    std::pair<int, std::string> r = RunWithBoot(boot, "");
    EXPECT_EQ(r.first, 0) << boot << ": " << r.second;  // ran its main()
    EXPECT_NE(r.second.find("ignoring malformed MP_PROCESS_BOOT"),
              std::string::npos)
        << boot << ": " << r.second;
  }
}

TEST(BootTest, CorruptPayloadExitsOneWithAMessage) {
  for (std::string payload :
       {std::string(), std::string("garbage"), std::string(100, '\xb5')}) {
    std::pair<int, std::string> r = RunWithBoot("spawn:3:0", payload);
    EXPECT_EQ(r.first, 1) << r.second;
    EXPECT_NE(r.second.find("mp: spawned child: bad payload"),
              std::string::npos)
        << r.second;
  }
}

TEST(BootTest, MissingRegistrationsAbortInsteadOfRunningMain) {
  // The child expects more registrations than the program has: it reaches
  // main(), and its first Process::Start() aborts with an explanation.
  std::pair<int, std::string> r = RunWithBoot("spawn:3:5", "");
  EXPECT_EQ(r.first, -SIGABRT) << r.second;
  EXPECT_NE(r.second.find("found only 0 of its 5 MP_REGISTER registrations"),
            std::string::npos)
      << r.second;
}

}  // namespace
