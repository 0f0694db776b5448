#include "process/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "process/fd.h"
#include "process/leak_check.h"

namespace mp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

// Reads everything from `fd` until EOF.
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    absl::StatusOr<size_t> n = ReadSome(fd, buf, sizeof(buf));
    if (!n.ok() || *n == 0) break;
    out.append(buf, *n);
  }
  return out;
}

// Runs `argv` with stdout captured; returns {exit code, stdout}.
std::pair<int, std::string> RunCapture(SpawnOptions opts) {
  absl::StatusOr<FdPair> p = MakePipe();
  EXPECT_TRUE(p.ok());
  opts.fds.push_back({1, p->write.get()});
  absl::StatusOr<pid_t> pid = Spawn(opts);
  EXPECT_TRUE(pid.ok()) << pid.status();
  if (!pid.ok()) return {-1000, ""};
  p->write.reset();
  std::string out = ReadAll(p->read.get());
  absl::StatusOr<int> code = WaitPid(*pid);
  EXPECT_TRUE(code.ok()) << code.status();
  return {code.value_or(-1000), out};
}

SpawnOptions Sh(const std::string& script) {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", script};
  return o;
}

// Spawns `opts` (whose fd plan wires the write ends of `pipes`), closes
// this process's write ends, reads each pipe to EOF in order and expects the
// child to exit 0. Returns what each pipe got (nothing if Spawn() failed).
std::vector<std::string> SpawnAndReadPipes(const SpawnOptions& opts,
                                           std::vector<FdPair*> pipes) {
  absl::StatusOr<pid_t> pid = Spawn(opts);
  EXPECT_TRUE(pid.ok()) << pid.status();
  if (!pid.ok()) return {};
  for (FdPair* p : pipes) p->write.reset();
  std::vector<std::string> out;
  for (FdPair* p : pipes) out.push_back(ReadAll(p->read.get()));
  absl::StatusOr<int> code = WaitPid(*pid);
  EXPECT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(code.value_or(-1000), 0);
  return out;
}

TEST(SpawnTest, ReportsExitCode) {
  testing::LeakCheck leaks;
  absl::StatusOr<pid_t> pid = Spawn(Sh("exit 3"));
  ASSERT_TRUE(pid.ok()) << pid.status();
  EXPECT_EQ(WaitPid(*pid).value(), 3);
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, ReportsSignalAsNegativeExitCode) {
  testing::LeakCheck leaks;
  absl::StatusOr<pid_t> pid = Spawn(Sh("kill -TERM $$"));
  ASSERT_TRUE(pid.ok()) << pid.status();
  EXPECT_EQ(WaitPid(*pid).value(), -SIGTERM);
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, LooksUpProgramInPath) {
  testing::LeakCheck leaks;
  SpawnOptions o;
  o.argv = {"echo", "hello", "world"};
  auto [code, out] = RunCapture(o);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "hello world\n");
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, ProgramNotInPathIsNotFound) {
  testing::LeakCheck leaks;
  SpawnOptions o;
  o.argv = {"mp-no-such-program-xyz"};
  absl::StatusOr<pid_t> pid = Spawn(o);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kNotFound) << pid.status();
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, ExecEnoentIsNotFoundAndChildIsReaped) {
  testing::LeakCheck leaks;
  SpawnOptions o;
  o.argv = {"/nonexistent/mp-prog"};
  absl::StatusOr<pid_t> pid = Spawn(o);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kNotFound) << pid.status();
  EXPECT_THAT(std::string(pid.status().message()),
              HasSubstr("execve /nonexistent/mp-prog"));
  EXPECT_TRUE(leaks.Verify(absl::ZeroDuration()).ok());
}

TEST(SpawnTest, ExecEaccesIsPermissionDenied) {
  testing::LeakCheck leaks;
  std::string path = TempDir() + "/not_executable.sh";
  {
    std::ofstream f(path);
    f << "#!/bin/sh\nexit 0\n";
  }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  SpawnOptions o;
  o.argv = {path};
  absl::StatusOr<pid_t> pid = Spawn(o);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kPermissionDenied)
      << pid.status();
  EXPECT_TRUE(leaks.Verify(absl::ZeroDuration()).ok());
}

TEST(SpawnTest, ChdirFailureNamesTheStep) {
  testing::LeakCheck leaks;
  SpawnOptions o = Sh("true");
  o.cwd = "/nonexistent-dir-mp";
  absl::StatusOr<pid_t> pid = Spawn(o);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(pid.status().message()),
              HasSubstr("chdir /nonexistent-dir-mp"));
  EXPECT_TRUE(leaks.Verify(absl::ZeroDuration()).ok());
}

TEST(SpawnTest, RejectsBadOptions) {
  testing::LeakCheck leaks;
  auto code = [](const SpawnOptions& o) { return Spawn(o).status().code(); };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(SpawnOptions{}), kInvalid);  // empty argv
  SpawnOptions o = Sh("true");
  o.argv[0] = "";
  EXPECT_EQ(code(o), kInvalid);  // empty program
  o = Sh(std::string("echo a\0b", 8));
  EXPECT_EQ(code(o), kInvalid);  // NUL in argv
  o = Sh("true");
  o.env = std::vector<std::string>{std::string("A=\0", 3)};
  EXPECT_EQ(code(o), kInvalid);  // NUL in env
  o = Sh("true");
  o.cwd = std::string("/\0", 2);
  EXPECT_EQ(code(o), kInvalid);  // NUL in cwd
  o = Sh("true");
  o.fds = {{-1, 1}};
  EXPECT_EQ(code(o), kInvalid);  // negative child fd
  o.fds = {{1, 2}, {1, 2}};
  EXPECT_EQ(code(o), kInvalid);  // child fd twice
  o.fds = {{1, 987}};
  EXPECT_EQ(code(o), kInvalid);  // parent fd not open
  o.fds = {{1, -1}};
  EXPECT_EQ(code(o), kInvalid);
  o.fds.clear();
  o.parent_death_signal = 1000;
  EXPECT_EQ(code(o), kInvalid);
  EXPECT_TRUE(leaks.Verify(absl::ZeroDuration()).ok());
}

TEST(SpawnTest, FdPlanWiresStdinAndStdout) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<FdPair> in = MakePipe();
    ASSERT_TRUE(in.ok());
    ASSERT_TRUE(WriteAll(in->write.get(), "abc\n").ok());
    in->write.reset();
    SpawnOptions o;
    o.argv = {"/bin/cat"};
    o.fds = {{0, in->read.get()}};
    auto [code, out] = RunCapture(o);
    EXPECT_EQ(code, 0);
    EXPECT_EQ(out, "abc\n");
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

// The naive dup2 order would clobber a source: child fd `b` <- parent `a`
// runs first and overwrites parent fd `b`, which child fd 1 wants.
TEST(SpawnTest, FdPlanHandlesCollisions) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<FdPair> a = MakePipe();
    absl::StatusOr<FdPair> b = MakePipe();
    ASSERT_TRUE(a.ok() && b.ok());
    const int bw = b->write.get();
    SpawnOptions o = Sh(absl::StrCat("echo to-b; echo to-a >&", bw));
    o.fds = {{bw, a->write.get()}, {1, bw}};
    EXPECT_THAT(SpawnAndReadPipes(o, {&*a, &*b}),
                ElementsAre("to-a\n", "to-b\n"));
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, FdPlanSwapsTwoFds) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<FdPair> a = MakePipe();
    absl::StatusOr<FdPair> b = MakePipe();
    ASSERT_TRUE(a.ok() && b.ok());
    const int aw = a->write.get(), bw = b->write.get();
    SpawnOptions o =
        Sh(absl::StrCat("echo at-a >&", aw, "; echo at-b >&", bw));
    o.fds = {{aw, bw}, {bw, aw}};
    EXPECT_THAT(SpawnAndReadPipes(o, {&*a, &*b}),
                ElementsAre("at-b\n", "at-a\n"));
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, FdPlanKeepsSameNumberedFd) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<FdPair> a = MakePipe();
    ASSERT_TRUE(a.ok());
    const int aw = a->write.get();
    SpawnOptions o = Sh(absl::StrCat("echo same >&", aw));
    o.fds = {{aw, aw}};  // close-on-exec must be cleared
    EXPECT_THAT(SpawnAndReadPipes(o, {&*a}), ElementsAre("same\n"));
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

// The error pipe Spawn() creates takes the lowest free fds; a plan that
// targets those numbers must not clobber it, or failures would go unseen.
TEST(SpawnTest, FdPlanDoesNotClobberTheErrorPipe) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<FdPair> a = MakePipe();
    ASSERT_TRUE(a.ok());
    int probe = ::dup(0);
    ASSERT_GE(probe, 0);
    ::close(probe);  // the error pipe will be {probe, probe + 1}
    SpawnOptions o = Sh("true");
    o.fds = {{probe, a->write.get()}, {probe + 1, a->write.get()}};
    o.cwd = "/nonexistent-dir-mp";
    absl::StatusOr<pid_t> pid = Spawn(o);
    EXPECT_EQ(pid.status().code(), absl::StatusCode::kNotFound) << pid.status();
    EXPECT_THAT(std::string(pid.status().message()), HasSubstr("chdir"));
  }
  EXPECT_TRUE(leaks.Verify(absl::ZeroDuration()).ok());
}

// Fds >= 3 the child sees: ls itself opens one for the directory.
std::vector<int> ChildHighFds(bool close_other_fds) {
  SpawnOptions o;
  o.argv = {"/bin/ls", "/proc/self/fd"};
  o.close_other_fds = close_other_fds;
  auto [code, out] = RunCapture(o);
  EXPECT_EQ(code, 0);
  std::vector<int> high;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    int fd;
    EXPECT_TRUE(absl::SimpleAtoi(line, &fd)) << line;
    if (fd >= 3) high.push_back(fd);
  }
  return high;
}

TEST(SpawnTest, NoFdLeaksIntoTheChild) {
  testing::LeakCheck leaks;
  // A descriptor opened without O_CLOEXEC, as careless libraries do.
  int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 0);
  EXPECT_EQ(ChildHighFds(true).size(), 1u);  // only ls's own directory fd
  // Proves the check can fail: without close_other_fds the fd is inherited.
  EXPECT_GE(ChildHighFds(false).size(), 2u);
  ::close(leaky);
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, ExplicitEnvironmentReplacesEnviron) {
  testing::LeakCheck leaks;
  SpawnOptions o;
  o.argv = {"sh", "-c", "echo \"$FOO|$HOME\""};  // default PATH finds sh
  o.env = std::vector<std::string>{"FOO=bar baz"};
  auto [code, out] = RunCapture(o);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "bar baz|\n");
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, InheritsEnvironByDefault) {
  testing::LeakCheck leaks;
  ::setenv("MP_SPAWN_TEST_VAR", "inherited", 1);
  auto [code, out] = RunCapture(Sh("echo $MP_SPAWN_TEST_VAR"));
  ::unsetenv("MP_SPAWN_TEST_VAR");
  EXPECT_EQ(out, "inherited\n");
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, UsesPathOfExplicitEnvironment) {
  testing::LeakCheck leaks;
  SpawnOptions o;
  o.argv = {"sh", "-c", "true"};
  o.env = std::vector<std::string>{"PATH=/nonexistent-mp"};
  EXPECT_EQ(Spawn(o).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, ChangesDirectory) {
  testing::LeakCheck leaks;
  char real[PATH_MAX];
  ASSERT_NE(::realpath(TempDir().c_str(), real), nullptr);
  SpawnOptions o;
  o.argv = {"/bin/pwd", "-P"};
  o.cwd = real;
  auto [code, out] = RunCapture(o);
  EXPECT_EQ(out, std::string(real) + "\n");
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, NewProcessGroupAndSession) {
  testing::LeakCheck leaks;
  SpawnOptions o = Sh("sleep 30");
  o.new_process_group = true;
  absl::StatusOr<pid_t> pid = Spawn(o);
  ASSERT_TRUE(pid.ok());
  EXPECT_EQ(::getpgid(*pid), *pid);  // setpgid ran before exec
  EXPECT_EQ(::getsid(*pid), ::getsid(0));
  ASSERT_EQ(::kill(-*pid, SIGKILL), 0);  // the whole group
  EXPECT_EQ(WaitPid(*pid).value(), -SIGKILL);

  o.new_process_group = false;
  o.new_session = true;
  pid = Spawn(o);
  ASSERT_TRUE(pid.ok());
  EXPECT_EQ(::getsid(*pid), *pid);
  EXPECT_EQ(::getpgid(*pid), *pid);
  ::kill(*pid, SIGKILL);
  EXPECT_EQ(WaitPid(*pid).value(), -SIGKILL);
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, InheritsProcessGroupByDefault) {
  testing::LeakCheck leaks;
  absl::StatusOr<pid_t> pid = Spawn(Sh("sleep 30"));
  ASSERT_TRUE(pid.ok());
  EXPECT_EQ(::getpgid(*pid), ::getpgid(0));
  ::kill(*pid, SIGKILL);
  EXPECT_EQ(WaitPid(*pid).value(), -SIGKILL);
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, ParentDeathSignalFiresWhenSpawningThreadExits) {
  testing::LeakCheck leaks;
  pid_t pid = -1;
  std::thread t([&] {
    SpawnOptions o;
    o.argv = {"/bin/sleep", "30"};
    o.parent_death_signal = SIGKILL;
    absl::StatusOr<pid_t> p = Spawn(o);
    ASSERT_TRUE(p.ok()) << p.status();
    pid = *p;
  });
  t.join();
  ASSERT_GT(pid, 0);
  const absl::Time start = absl::Now();
  absl::StatusOr<int> code = WaitPid(pid);
  EXPECT_EQ(code.value(), -SIGKILL);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));  // not the full sleep
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, ChildGetsDefaultSignalHandlers) {
  testing::LeakCheck leaks;
  struct sigaction ign = {}, old_usr1, old_pipe;
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGUSR1, &ign, &old_usr1);
  ::sigaction(SIGPIPE, &ign, &old_pipe);
  // An ignored SIGUSR1 would survive exec; the child must die of it.
  absl::StatusOr<pid_t> pid = Spawn(Sh("kill -USR1 $$; exit 0"));
  ::sigaction(SIGUSR1, &old_usr1, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  ASSERT_TRUE(pid.ok());
  EXPECT_EQ(WaitPid(*pid).value(), -SIGUSR1);
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, ChildGetsCallersSignalMaskNotTheBlockedOne) {
  testing::LeakCheck leaks;
  sigset_t usr2, old;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  ::pthread_sigmask(SIG_BLOCK, &usr2, &old);
  SpawnOptions o;
  o.argv = {"/bin/grep", "SigBlk", "/proc/self/status"};  // no shell: dash
  auto [code, out] = RunCapture(o);                       // clears the mask
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  // Exactly SIGUSR2 (bit 11) blocked, as in the caller; not everything.
  EXPECT_EQ(out, "SigBlk:\t0000000000000800\n");
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, ExplicitSignalMask) {
  testing::LeakCheck leaks;
  sigset_t usr2, old;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  ::pthread_sigmask(SIG_BLOCK, &usr2, &old);
  SpawnOptions o;
  o.argv = {"/bin/grep", "SigBlk", "/proc/self/status"};
  o.signal_mask.emplace();
  sigemptyset(&*o.signal_mask);
  auto [code, out] = RunCapture(o);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(out, "SigBlk:\t0000000000000000\n");
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, ExecutableOverridesLookupAndKeepsArgv0) {
  testing::LeakCheck leaks;
  SpawnOptions o;
  o.argv = {"custom-name", "-c", "echo $0"};
  o.executable = "/bin/sh";
  auto [code, out] = RunCapture(o);
  EXPECT_EQ(out, "custom-name\n");
  o.executable = "/nonexistent/sh";
  EXPECT_EQ(Spawn(o).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, SetsUmask) {
  testing::LeakCheck leaks;
  SpawnOptions o = Sh("umask");
  o.umask = 027;
  auto [code, out] = RunCapture(o);
  EXPECT_EQ(out, "0027\n");
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, ConcurrentSpawnsFromThreads) {
  testing::LeakCheck leaks;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        SpawnOptions o;
        o.argv = {"/bin/true"};
        absl::StatusOr<pid_t> pid = Spawn(o);
        if (pid.ok() && WaitPid(*pid).value_or(-1) == 0) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, WaitPidOnNonChildIsNotFound) {
  EXPECT_EQ(WaitPid(1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(TryWaitPid(1).status().code(), absl::StatusCode::kNotFound);
}

TEST(SpawnTest, TryWaitPidDoesNotBlock) {
  testing::LeakCheck leaks;
  absl::StatusOr<pid_t> pid = Spawn(Sh("sleep 30"));
  ASSERT_TRUE(pid.ok());
  absl::StatusOr<std::optional<int>> r = TryWaitPid(*pid);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  ::kill(*pid, SIGTERM);
  EXPECT_EQ(WaitPid(*pid).value(), -SIGTERM);
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(SpawnTest, DecodeWaitStatus) {
  EXPECT_EQ(DecodeWaitStatus(0), 0);
  EXPECT_EQ(DecodeWaitStatus(3 << 8), 3);
  EXPECT_EQ(DecodeWaitStatus(SIGKILL), -SIGKILL);
}

TEST(FindExecutableTest, FindsShell) {
  absl::StatusOr<std::string> sh = FindExecutableInPath("sh", "/nope:/bin");
  ASSERT_TRUE(sh.ok()) << sh.status();
  EXPECT_EQ(*sh, "/bin/sh");
  EXPECT_TRUE(FindExecutable("sh").ok());
}

TEST(FindExecutableTest, Errors) {
  EXPECT_EQ(FindExecutable("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FindExecutable("mp-no-such-program-xyz").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(FindExecutable("/nonexistent/x").status().code(),
            absl::StatusCode::kNotFound);
  // A directory of that name is not a program.
  EXPECT_EQ(FindExecutableInPath("bin", "/").status().code(),
            absl::StatusCode::kPermissionDenied);
  std::string dir = TempDir();
  std::string path = dir + "/mp_plain_file";
  { std::ofstream(path) << "x"; }
  ::chmod(path.c_str(), 0644);
  EXPECT_EQ(FindExecutableInPath("mp_plain_file", dir).status().code(),
            absl::StatusCode::kPermissionDenied);
  ::chmod(path.c_str(), 0755);
  EXPECT_EQ(FindExecutableInPath("mp_plain_file", dir).value(), path);
  EXPECT_EQ(FindExecutable(path).value(), path);
}

}  // namespace
}  // namespace mp
