#include "process/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "process/internal/pidfd.h"
#include "process/leak_check.h"

namespace {

// ---- targets, registered for forkserver and spawn ---------------------------

void Nothing() {}
MP_REGISTER(Nothing);

int ReturnCode(int code) { return code; }
MP_REGISTER(ReturnCode);

void ExitWith(int code) { std::exit(code); }
MP_REGISTER(ExitWith);

void RaiseSignal(int sig) { ::raise(sig); }
MP_REGISTER(RaiseSignal);

void SleepMs(int ms) { absl::SleepFor(absl::Milliseconds(ms)); }
MP_REGISTER(SleepMs);

void Throw(std::string what) { throw std::runtime_error(what); }
MP_REGISTER(Throw);

// OK for an empty message, else an internal error with it.
absl::Status StatusTarget(std::string message) {
  if (message.empty()) return absl::OkStatus();
  return absl::InternalError(message);
}
MP_REGISTER(StatusTarget);

absl::StatusOr<int> StatusOrTarget(bool fail) {
  if (fail) return absl::NotFoundError("no such thing");
  return 5;  // a value, not an exit code
}
MP_REGISTER(StatusOrTarget);

int CheckArgs(const std::string& s, std::vector<int> v, double d) {
  return s == "hello" && v == std::vector<int>{1, 2, 3} && d == 2.5 ? 42 : 1;
}
MP_REGISTER(CheckArgs);

// 0 when this child knows who it is; a distinct code per mismatch.
int CheckIdentity(std::string name, int parent_pid, bool daemon) {
  mp::ProcessInfo self = mp::CurrentProcess();
  if (self.name != name) return 10;
  if (self.pid != ::getpid()) return 11;
  if (self.daemon != daemon) return 12;
  std::optional<mp::ProcessInfo> parent = mp::ParentProcess();
  if (!parent.has_value()) return 13;
  if (parent->pid != parent_pid) return 14;
  if (parent->name != "MainProcess") return 15;
  return 0;
}
MP_REGISTER(CheckIdentity);

// 0 when a daemon child may not start children; 1 otherwise.
int DaemonStartsChild() {
  mp::Process p(Nothing);
  absl::Status s = p.Start();
  if (absl::IsFailedPrecondition(s)) return 0;
  if (s.ok()) (void)p.Join();
  return 1;
}
MP_REGISTER(DaemonStartsChild);

// Starts a grandchild and returns its exit code: nested processes work and
// the child's names continue the identity (`Process-N:1`).
int StartGrandchild() {
  mp::Process p(ReturnCode, 5);
  if (p.name() != mp::CurrentProcess().name + ":1") return 20;
  if (!p.Start().ok()) return 21;
  if (!p.Join().ok()) return 22;
  return p.exitcode().value_or(23);
}
MP_REGISTER(StartGrandchild);

void Print(std::string text) { std::printf("%s", text.c_str()); }
MP_REGISTER(Print);

// 0 when `fd` is open and close-on-exec.
int IsCloexec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && (flags & FD_CLOEXEC) != 0 ? 0 : 1;
}
MP_REGISTER(IsCloexec);

int NotRegistered(int x) { return x; }

namespace one {
int Same() { return 1; }
MP_REGISTER(Same);
}  // namespace one
namespace two {
int Same() { return 2; }
MP_REGISTER(Same);  // also "Same": ambiguous for the child
}  // namespace two

constexpr auto kTwice = [](int x) { return 2 * x; };
MP_REGISTER_AS("Twice", kTwice);

// ---- helpers ---------------------------------------------------------------

// Redirects fd `target` (1 or 2) to a temporary file for its lifetime.
class CaptureFd {
 public:
  explicit CaptureFd(int target) : target_(target) {
    std::fflush(nullptr);
    char path[] = "/tmp/mp_process_test_XXXXXX";
    int fd = ::mkostemp(path, O_CLOEXEC);
    path_ = path;
    saved_ = ::fcntl(target_, F_DUPFD_CLOEXEC, 10);
    ::dup2(fd, target_);
    ::close(fd);
  }
  ~CaptureFd() { Restore(); }
  std::string Restore() {
    if (saved_ >= 0) {
      std::fflush(nullptr);
      ::dup2(saved_, target_);
      ::close(saved_);
      saved_ = -1;
      std::ifstream in(path_);
      std::stringstream ss;
      ss << in.rdbuf();
      text_ = ss.str();
      ::unlink(path_.c_str());
    }
    return text_;
  }

 private:
  int target_;
  int saved_ = -1;
  std::string path_;
  std::string text_;
};

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

class ProcessStartMethodTest : public ::testing::TestWithParam<mp::StartMethod> {
 protected:
  void SetUp() override {
    // The forkserver is a long-lived child: start it before the leak check.
    if (GetParam() == mp::StartMethod::kForkServer) {
      ASSERT_TRUE(mp::StartForkServer().ok());
    }
    leaks_.emplace();
  }
  void TearDown() override {
    absl::Status s = leaks_->Verify(absl::Seconds(5));
    EXPECT_TRUE(s.ok()) << s;
  }

  mp::ProcessOptions Options() const {
    mp::ProcessOptions o;
    o.start_method = GetParam();
    return o;
  }

  template <typename F, typename... A>
  std::optional<int> Run(F&& f, A&&... args) {
    mp::Process p(Options(), std::forward<F>(f), std::forward<A>(args)...);
    absl::Status s = p.Start();
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) return std::nullopt;
    s = p.Join();
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_FALSE(p.IsAlive());
    return p.exitcode();
  }

  std::optional<mp::testing::LeakCheck> leaks_;
};

INSTANTIATE_TEST_SUITE_P(
    AllStartMethods, ProcessStartMethodTest,
    ::testing::Values(mp::StartMethod::kFork, mp::StartMethod::kForkServer,
                      mp::StartMethod::kSpawn),
    [](const ::testing::TestParamInfo<mp::StartMethod>& info) {
      return std::string(mp::StartMethodName(info.param));
    });

TEST_P(ProcessStartMethodTest, ReturningTargetExitsZero) {
  EXPECT_EQ(Run(Nothing), 0);
}

TEST_P(ProcessStartMethodTest, IntResultIsTheExitCode) {
  EXPECT_EQ(Run(ReturnCode, 7), 7);
}

TEST_P(ProcessStartMethodTest, ExplicitExitSetsTheExitCode) {
  EXPECT_EQ(Run(ExitWith, 3), 3);
}

TEST_P(ProcessStartMethodTest, DeathBySignalIsNegativeExitCode) {
  EXPECT_EQ(Run(RaiseSignal, SIGUSR1), -SIGUSR1);
}

TEST_P(ProcessStartMethodTest, ArgumentsArrive) {
  EXPECT_EQ(Run(CheckArgs, "hello", std::vector<int>{1, 2, 3}, 2.5), 42);
}

TEST_P(ProcessStartMethodTest, RegisteredCaptureFreeLambda) {
  EXPECT_EQ(Run(kTwice, 21), 42);
}

TEST_P(ProcessStartMethodTest, ThrowingTargetPrintsAndExitsOne) {
  CaptureFd err(2);
  EXPECT_EQ(Run(Throw, std::string("boom")), 1);
  std::string text = err.Restore();
  EXPECT_THAT(text, ::testing::HasSubstr(": std::runtime_error: boom\n"));
  EXPECT_THAT(text, ::testing::MatchesRegex(
                        "(.|\n)*Process Process-[0-9]+: std::runtime_error: "
                        "boom\n(.|\n)*"));
}

TEST_P(ProcessStartMethodTest, OkStatusResultExitsZero) {
  EXPECT_EQ(Run(StatusTarget, std::string()), 0);
  EXPECT_EQ(Run(StatusOrTarget, false), 0);
}

TEST_P(ProcessStartMethodTest, ErrorStatusResultPrintsAndExitsOne) {
  CaptureFd err(2);
  EXPECT_EQ(Run(StatusTarget, std::string("disk full")), 1);
  EXPECT_EQ(Run(StatusOrTarget, true), 1);
  std::string text = err.Restore();
  EXPECT_THAT(text, ::testing::MatchesRegex(
                        "(.|\n)*Process Process-[0-9]+: INTERNAL: disk full\n"
                        "(.|\n)*Process Process-[0-9]+: NOT_FOUND: no such "
                        "thing\n(.|\n)*"));
}

TEST_P(ProcessStartMethodTest, ChildOutputIsFlushedAndParentOutputNotDuplicated) {
  CaptureFd out(1);
  std::printf("parent-");  // buffered: a file is fully buffered
  EXPECT_EQ(Run(Print, std::string("child")), 0);
  EXPECT_EQ(out.Restore(), "parent-child");
}

TEST_P(ProcessStartMethodTest, TerminateGivesMinusSigterm) {
  mp::Process p(Options(), SleepMs, 60000);
  ASSERT_TRUE(p.Start().ok());
  EXPECT_TRUE(p.IsAlive());
  EXPECT_FALSE(p.exitcode().has_value());
  ASSERT_TRUE(p.Terminate().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), -SIGTERM);
  EXPECT_FALSE(p.IsAlive());
  // Signalling an ended process does nothing.
  EXPECT_TRUE(p.Kill().ok());
  EXPECT_EQ(p.exitcode(), -SIGTERM);
}

TEST_P(ProcessStartMethodTest, KillGivesMinusSigkill) {
  mp::Process p(Options(), SleepMs, 60000);
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Kill().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

TEST_P(ProcessStartMethodTest, JoinTimeoutIsDeadlineExceeded) {
  mp::Process p(Options(), SleepMs, 60000);
  ASSERT_TRUE(p.Start().ok());
  absl::Status s = p.Join(absl::Milliseconds(50));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_TRUE(p.IsAlive());
  s = p.Join(absl::ZeroDuration());
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  ASSERT_TRUE(p.Kill().ok());
  ASSERT_TRUE(p.Join(absl::Seconds(10)).ok());
  EXPECT_EQ(p.exitcode(), -SIGKILL);
  // Joining again returns at once.
  EXPECT_TRUE(p.Join(absl::ZeroDuration()).ok());
}

TEST_P(ProcessStartMethodTest, SentinelBecomesReadableWhenTheChildEnds) {
  mp::Process p(Options(), SleepMs, 60000);
  EXPECT_EQ(p.sentinel(), -1);
  ASSERT_TRUE(p.Start().ok());
  int fd = p.sentinel();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(Readable(fd));
  ASSERT_TRUE(p.Kill().ok());
  pollfd pfd{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
  ASSERT_TRUE(p.Join().ok());
  EXPECT_TRUE(Readable(fd));
  ASSERT_TRUE(p.Close().ok());
  EXPECT_EQ(p.sentinel(), -1);

  // Asked for only after the child was joined: readable at once.
  mp::Process q(Options(), Nothing);
  ASSERT_TRUE(q.Start().ok());
  ASSERT_TRUE(q.Join().ok());
  ASSERT_GE(q.sentinel(), 0);
  EXPECT_TRUE(Readable(q.sentinel()));
  EXPECT_EQ(q.sentinel(), q.sentinel());  // the same fd each time
}

TEST_P(ProcessStartMethodTest, NamesAndIdentity) {
  mp::Process a(Options(), Nothing);
  mp::Process b(Options(), Nothing);
  EXPECT_THAT(a.name(), ::testing::MatchesRegex("Process-[0-9]+"));
  EXPECT_NE(a.name(), b.name());
  mp::ProcessOptions o = Options();
  o.name = "worker";
  mp::Process p(o, CheckIdentity, std::string("worker"),
                static_cast<int>(::getpid()), false);
  EXPECT_EQ(p.name(), "worker");
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(mp::CurrentProcess().name, "MainProcess");
  EXPECT_FALSE(mp::ParentProcess().has_value());
}

TEST_P(ProcessStartMethodTest, SetNameBeforeStartReachesTheChild) {
  mp::Process p(Options(), CheckIdentity, std::string("renamed"),
                static_cast<int>(::getpid()), false);
  p.set_name("renamed");
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_P(ProcessStartMethodTest, NestedProcessesContinueTheIdentity) {
  mp::Process p(Options(), StartGrandchild);
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), 5);
}

TEST_P(ProcessStartMethodTest, DaemonFlagReachesTheChildWhichMayNotStartChildren) {
  mp::ProcessOptions o = Options();
  o.daemon = true;
  mp::Process p(o, CheckIdentity, std::string("d"),
                static_cast<int>(::getpid()), true);
  p.set_name("d");
  EXPECT_TRUE(p.daemon());
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), 0);

  mp::Process q(o, DaemonStartsChild);
  ASSERT_TRUE(q.Start().ok());
  ASSERT_TRUE(q.Join().ok());
  EXPECT_EQ(q.exitcode(), 0);
}

TEST_P(ProcessStartMethodTest, MisuseIsFailedPrecondition) {
  mp::Process p(Options(), SleepMs, 60000);
  EXPECT_TRUE(absl::IsFailedPrecondition(p.Join()));
  EXPECT_TRUE(absl::IsFailedPrecondition(p.Terminate()));
  EXPECT_TRUE(absl::IsFailedPrecondition(p.Kill()));
  EXPECT_FALSE(p.IsAlive());
  EXPECT_EQ(p.pid(), 0);
  ASSERT_TRUE(p.Start().ok());
  EXPECT_GT(p.pid(), 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(p.Start()));
  EXPECT_TRUE(absl::IsFailedPrecondition(p.Close()));  // still running
  ASSERT_TRUE(p.Kill().ok());
  ASSERT_TRUE(p.Join().ok());
  ASSERT_TRUE(p.Close().ok());
  EXPECT_TRUE(p.Close().ok());  // closing twice is fine
  EXPECT_TRUE(absl::IsFailedPrecondition(p.Start()));
  EXPECT_TRUE(absl::IsFailedPrecondition(p.Join()));
  EXPECT_TRUE(absl::IsFailedPrecondition(p.Terminate()));
  EXPECT_FALSE(p.IsAlive());
  EXPECT_EQ(p.exitcode(), -SIGKILL);

  mp::Process moved_to(std::move(p));
  EXPECT_TRUE(absl::IsFailedPrecondition(p.Start()));  // NOLINT: moved from
  EXPECT_TRUE(absl::IsFailedPrecondition(p.Join()));   // NOLINT
  EXPECT_EQ(p.sentinel(), -1);                          // NOLINT

  mp::Process never_started(Options(), Nothing);
  EXPECT_TRUE(never_started.Close().ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(never_started.Start()));
}

TEST_P(ProcessStartMethodTest, MovedProcessKeepsWorking) {
  mp::Process p(Options(), ReturnCode, 9);
  ASSERT_TRUE(p.Start().ok());
  std::vector<mp::Process> v;
  v.push_back(std::move(p));
  ASSERT_TRUE(v[0].Join().ok());
  EXPECT_EQ(v[0].exitcode(), 9);
}

TEST_P(ProcessStartMethodTest, ActiveChildrenListsRunningAndReapsEnded) {
  mp::Process sleeper(Options(), SleepMs, 60000);
  mp::Process quick(Options(), Nothing);
  ASSERT_TRUE(sleeper.Start().ok());
  ASSERT_TRUE(quick.Start().ok());
  pollfd pfd{quick.sentinel(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
  std::vector<mp::ProcessInfo> active = mp::ActiveChildren();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].pid, sleeper.pid());
  EXPECT_EQ(active[0].name, sleeper.name());
  EXPECT_EQ(quick.exitcode(), 0);  // reaped by ActiveChildren()
  ASSERT_TRUE(sleeper.Kill().ok());
  ASSERT_TRUE(sleeper.Join().ok());
  EXPECT_TRUE(mp::ActiveChildren().empty());
}

TEST_P(ProcessStartMethodTest, DestroyingARunningProcessLeavesNoZombie) {
  // The child outlives its Process; the leak check in TearDown() waits for
  // it to end and be reaped in the background.
  {
    mp::Process p(Options(), SleepMs, 200);
    ASSERT_TRUE(p.Start().ok());
  }
  {
    mp::Process p(Options(), SleepMs, 100);
    ASSERT_TRUE(p.Start().ok());
    mp::Process q(Options(), Nothing);
    q = std::move(p);  // q's unstarted process goes, p's child is q's now
    ASSERT_TRUE(q.Join().ok());
    EXPECT_EQ(q.exitcode(), 0);
  }
}

TEST_P(ProcessStartMethodTest, UnregisteredTargetIsAnErrorAtStartExceptForFork) {
  int base = 3;
  mp::Process p(Options(), NotRegistered, 4);
  mp::Process q(Options(), [base](int x) { return base + x; }, 4);
  if (GetParam() == mp::StartMethod::kFork) {
    ASSERT_TRUE(p.Start().ok());
    ASSERT_TRUE(q.Start().ok());
    ASSERT_TRUE(p.Join().ok());
    ASSERT_TRUE(q.Join().ok());
    EXPECT_EQ(p.exitcode(), 4);
    EXPECT_EQ(q.exitcode(), 7);
    return;
  }
  absl::Status s = p.Start();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("MP_REGISTER"));
  s = q.Start();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_FALSE(p.IsAlive());
  EXPECT_EQ(p.pid(), 0);
}

TEST_P(ProcessStartMethodTest, TwoFunctionsWithOneNameAreRefusedAtStart) {
  mp::Process p(Options(), one::Same);
  absl::Status s = p.Start();
  if (GetParam() == mp::StartMethod::kFork) {
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_TRUE(p.Join().ok());
    EXPECT_EQ(p.exitcode(), 1);
    return;
  }
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("MP_REGISTER_AS"));
}

TEST_P(ProcessStartMethodTest, ContextCreatesProcessesWithItsStartMethod) {
  absl::StatusOr<mp::Context> ctx =
      mp::GetContext(mp::StartMethodName(GetParam()));
  ASSERT_TRUE(ctx.ok());
  mp::Process p = ctx->NewProcess(ReturnCode, 4);
  EXPECT_EQ(p.start_method(), GetParam());
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), 4);
}

TEST_P(ProcessStartMethodTest, ManyStarts) {
  std::vector<mp::Process> ps;
  for (int i = 0; i < 20; ++i) {
    ps.emplace_back(Options(), ReturnCode, i);
    ASSERT_TRUE(ps.back().Start().ok());
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(ps[i].Join().ok());
    EXPECT_EQ(ps[i].exitcode(), i);
  }
}

TEST(ProcessTest, FallbackSentinelPipeWorks) {
  mp::testing::LeakCheck leaks;
  mp::process_internal::DisablePidfdForTesting(true);
  for (mp::StartMethod m : {mp::StartMethod::kFork, mp::StartMethod::kSpawn}) {
    mp::ProcessOptions o;
    o.start_method = m;
    mp::Process p(o, SleepMs, 60000);
    ASSERT_TRUE(p.Start().ok());
    EXPECT_FALSE(Readable(p.sentinel()));
    EXPECT_TRUE(absl::IsDeadlineExceeded(p.Join(absl::Milliseconds(20))));
    ASSERT_TRUE(p.Terminate().ok());
    ASSERT_TRUE(p.Join().ok());
    EXPECT_EQ(p.exitcode(), -SIGTERM);
    EXPECT_TRUE(Readable(p.sentinel()));
    mp::Process q(o, SleepMs, 50);
    ASSERT_TRUE(q.Start().ok());
  }  // q is reaped in the background
  {
    // The spawned child's end of the sentinel pipe (fd 4) is close-on-exec,
    // so programs the child runs do not keep the sentinel unready.
    mp::ProcessOptions o;
    o.start_method = mp::StartMethod::kSpawn;
    mp::Process p(o, IsCloexec, 4);
    ASSERT_TRUE(p.Start().ok());
    ASSERT_TRUE(p.Join().ok());
    EXPECT_EQ(p.exitcode(), 0);
  }
  mp::process_internal::DisablePidfdForTesting(false);
  absl::Status s = leaks.Verify(absl::Seconds(5));
  EXPECT_TRUE(s.ok()) << s;
}

TEST(ProcessTest, ForkServerSurvivesManyStarts) {
  ASSERT_TRUE(mp::StartForkServer().ok());
  pid_t server = mp::ForkServerPid();
  ASSERT_GT(server, 0);
  mp::testing::LeakCheck leaks;
  mp::ProcessOptions o;
  o.start_method = mp::StartMethod::kForkServer;
  for (int i = 0; i < 200; ++i) {
    mp::Process p(o, ReturnCode, i % 100);
    ASSERT_TRUE(p.Start().ok());
    ASSERT_TRUE(p.Join().ok());
    ASSERT_EQ(p.exitcode(), i % 100);
  }
  EXPECT_EQ(mp::ForkServerPid(), server);
  absl::Status s = leaks.Verify();
  EXPECT_TRUE(s.ok()) << s;
}

TEST(ProcessTest, ForkServerRestartsAfterStop) {
  ASSERT_TRUE(mp::StartForkServer().ok());
  ASSERT_TRUE(mp::StopForkServer().ok());
  EXPECT_EQ(mp::ForkServerPid(), 0);
  EXPECT_TRUE(mp::StopForkServer().ok());  // no-op
  mp::ProcessOptions o;
  o.start_method = mp::StartMethod::kForkServer;
  mp::Process p(o, ReturnCode, 3);
  ASSERT_TRUE(p.Start().ok());  // starts a new server on first use
  EXPECT_GT(mp::ForkServerPid(), 0);
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), 3);
}

TEST(ProcessTest, ForkServerChildOfStoppedServerReports255) {
  ASSERT_TRUE(mp::StartForkServer().ok());
  mp::ProcessOptions o;
  o.start_method = mp::StartMethod::kForkServer;
  mp::Process p(o, SleepMs, 300);
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(mp::StopForkServer().ok());
  // The server is gone, so the exit status cannot be known (Python: 255).
  ASSERT_TRUE(p.Join(absl::Seconds(10)).ok());
  EXPECT_EQ(p.exitcode(), 255);
}

TEST(ProcessTest, GetContextRejectsUnknownMethods) {
  EXPECT_TRUE(mp::GetContext("fork").ok());
  EXPECT_TRUE(mp::GetContext("forkserver").ok());
  EXPECT_TRUE(mp::GetContext("spawn").ok());
  absl::StatusOr<mp::Context> bad = mp::GetContext("thread");
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  EXPECT_TRUE(absl::IsInvalidArgument(mp::GetContext("").status()));
}

TEST(ProcessTest, CpuCountRespectsTheAffinityMask) {
  cpu_set_t set;
  ASSERT_EQ(::sched_getaffinity(0, sizeof(set), &set), 0);
  EXPECT_EQ(mp::CpuCount(), CPU_COUNT(&set));
  EXPECT_GE(mp::CpuCount(), 1);
  // In a child pinned to one CPU, CpuCount() is 1.
  mp::Process p([] {
    cpu_set_t one;
    CPU_ZERO(&one);
    cpu_set_t mine;
    ::sched_getaffinity(0, sizeof(mine), &mine);
    for (int i = 0; i < CPU_SETSIZE; ++i) {
      if (CPU_ISSET(i, &mine)) {
        CPU_SET(i, &one);
        break;
      }
    }
    if (::sched_setaffinity(0, sizeof(one), &one) != 0) return 2;
    return mp::CpuCount() == 1 ? 0 : 1;
  });
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(ProcessTest, ForkRunsCapturingLambdasAndFunctors) {
  mp::testing::LeakCheck leaks;
  {
  std::string captured = "abc";
  mp::Process p([&captured](int add) { return static_cast<int>(captured.size()) + add; }, 4);
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Join().ok());
  EXPECT_EQ(p.exitcode(), 7);
  struct Functor {
    int operator()() const { return 12; }
  };
  mp::Process q{Functor()};
  ASSERT_TRUE(q.Start().ok());
  ASSERT_TRUE(q.Join().ok());
  EXPECT_EQ(q.exitcode(), 12);
  mp::Process r([] { throw 42; });
  CaptureFd err(2);
  ASSERT_TRUE(r.Start().ok());
  ASSERT_TRUE(r.Join().ok());
  EXPECT_EQ(r.exitcode(), 1);
  EXPECT_THAT(err.Restore(), ::testing::HasSubstr("unknown exception"));
  }
  absl::Status s = leaks.Verify();
  EXPECT_TRUE(s.ok()) << s;
}

TEST(ProcessTest, StateRebuildsAfterARawFork) {
  mp::testing::LeakCheck leaks;
  {
    mp::Process sleeper(SleepMs, 60000);
    ASSERT_TRUE(sleeper.Start().ok());
    ASSERT_EQ(mp::ActiveChildren().size(), 1u);
    std::fflush(nullptr);
    pid_t pid = ::fork();  // not through mp
    if (pid == 0) {
      // The parent's children are not ours; starting our own works.
      int code = mp::ActiveChildren().empty() ? 0 : 1;
      mp::Process p(ReturnCode, 6);
      if (!p.Start().ok() || !p.Join().ok() || p.exitcode() != 6) code = 2;
      if (!mp::ActiveChildren().empty()) code = 3;
      ::_exit(code);
    }
    ASSERT_GT(pid, 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    ASSERT_EQ(mp::ActiveChildren().size(), 1u);
    ASSERT_TRUE(sleeper.Kill().ok());
    ASSERT_TRUE(sleeper.Join().ok());
  }
  absl::Status s = leaks.Verify();
  EXPECT_TRUE(s.ok()) << s;
}

TEST(ProcessTest, StartMethodNamesRoundTrip) {
  for (mp::StartMethod m : {mp::StartMethod::kFork,
                            mp::StartMethod::kForkServer,
                            mp::StartMethod::kSpawn}) {
    absl::StatusOr<mp::StartMethod> back =
        mp::ParseStartMethod(mp::StartMethodName(m));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, m);
  }
}

}  // namespace
