#include "tools/pmap/runner.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"

namespace mp {
namespace pmap {
namespace {

using ::testing::HasSubstr;

struct Result {
  int status;
  std::string out, err;
};

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs pmap's Runner in this process with fds 1 and 2 sent to files.
Result RunPmap(std::vector<std::string> args) {
  absl::StatusOr<Options> o = ParseArgs(args, 2);
  EXPECT_TRUE(o.ok()) << o.status();
  absl::StatusOr<CommandTemplate> t =
      CommandTemplate::Parse(o->command, o->no_shell);
  EXPECT_TRUE(t.ok());
  absl::StatusOr<std::unique_ptr<InputGenerator>> in =
      InputGenerator::Create(*o);
  EXPECT_TRUE(in.ok()) << in.status();
  const std::string dir = std::getenv("TEST_TMPDIR");
  const std::string out_path = dir + "/out", err_path = dir + "/err";
  fflush(stdout);
  fflush(stderr);
  int saved_out = ::dup(1), saved_err = ::dup(2);
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(out, 1);
  ::dup2(err, 2);
  ::close(out);
  ::close(err);
  int status;
  {
    Runner runner(*o, *std::move(t), *std::move(in));
    status = runner.Run();
  }
  ::dup2(saved_out, 1);
  ::dup2(saved_err, 2);
  ::close(saved_out);
  ::close(saved_err);
  return {status, Slurp(out_path), Slurp(err_path)};
}

TEST(RunnerTest, RunsEveryJobAndCountsFailures) {
  testing::LeakCheck leaks;
  Result r = RunPmap({"-k", "-j3", "echo {}; exit {}", ":::", "0", "1", "2",
                      "0"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "0\n1\n2\n0\n");
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(RunnerTest, GroupsStdoutAndStderrPerJob) {
  testing::LeakCheck leaks;
  Result r = RunPmap({"-j2", "--tag", "echo out; echo err >&2; : {}", ":::", "a"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "a\tout\n");
  EXPECT_EQ(r.err, "a\terr\n");
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(RunnerTest, LineBufferLeavesNoPipes) {
  testing::LeakCheck leaks;
  Result r = RunPmap({"--line-buffer", "-j2", "printf 'x\\ny'", ":::", "a",
                      "b"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out.size(), 6u);
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(RunnerTest, TimeoutKillsTheWholeGroupAndLeavesNoChild) {
  testing::LeakCheck leaks;
  Result r = RunPmap({"--timeout", "0.3", "--term-seq", "TERM,100,KILL,10",
                      "sleep 30 & sleep 30; : {}", ":::", "x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, HasSubstr("timed out"));
  EXPECT_TRUE(leaks.Verify(absl::Seconds(5)).ok());
}

TEST(RunnerTest, RetriesAndHalt) {
  testing::LeakCheck leaks;
  Result r = RunPmap({"-j1", "--halt", "now,fail=1", "--retries", "2",
                      "echo {}; exit {}", ":::", "0", "5", "0"});
  EXPECT_EQ(r.status, 5);
  EXPECT_EQ(r.out, "0\n5\n");
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(RunnerTest, JoblogAndResume) {
  testing::LeakCheck leaks;
  const std::string log = std::string(std::getenv("TEST_TMPDIR")) + "/jl";
  EXPECT_EQ(RunPmap({"-j1", "--joblog", log, "exit {}", ":::", "0", "1"})
                .status, 1);
  Result r = RunPmap({"-j1", "--resume-failed", "--joblog", log,
                      "echo {}; exit 0", ":::", "0", "1", "2"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "1\n2\n");
  std::string text = Slurp(log);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5);  // header + 4
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(RunnerTest, UnreadableJoblogIsAnError) {
  testing::LeakCheck leaks;
  Result r = RunPmap({"--joblog", "/nonexistent/dir/log", "true", ":::", "1"});
  EXPECT_EQ(r.status, 255);
  EXPECT_THAT(r.err, HasSubstr("pmap: "));
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(RunnerTest, RestoresSignalMask) {
  sigset_t before, after;
  ::sigprocmask(SIG_SETMASK, nullptr, &before);
  RunPmap({"true", ":::", "1"});
  ::sigprocmask(SIG_SETMASK, nullptr, &after);
  EXPECT_EQ(sigismember(&after, SIGCHLD), sigismember(&before, SIGCHLD));
  EXPECT_EQ(sigismember(&after, SIGINT), sigismember(&before, SIGINT));
}

}  // namespace
}  // namespace pmap
}  // namespace mp
