#include "process/fd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "process/status_macros.h"

namespace mp {
namespace {

TEST(FdTest, UniqueFdClosesOnDestruction) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<FdPair> p = MakePipe();
    ASSERT_TRUE(p.ok()) << p.status();
  }
  EXPECT_TRUE(leaks.Verify(absl::ZeroDuration()).ok());
}

TEST(FdTest, EveryCreatedFdIsCloseOnExec) {
  absl::StatusOr<FdPair> p = MakePipe();
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(fcntl(p->read.get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(fcntl(p->write.get(), F_GETFD) & FD_CLOEXEC);
  absl::StatusOr<FdPair> s = MakeSocketPair();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(fcntl(s->read.get(), F_GETFD) & FD_CLOEXEC);
  absl::StatusOr<UniqueFd> d = DupCloexec(0);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(fcntl(d->get(), F_GETFD) & FD_CLOEXEC);
}

TEST(FdTest, WriteAllThenReadExactRoundTrips) {
  absl::StatusOr<FdPair> s = MakeSocketPair();
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(WriteAll(s->write.get(), "hello").ok());
  std::string buf(5, '\0');
  ASSERT_TRUE(ReadExact(s->read.get(), buf.data(), buf.size()).ok());
  EXPECT_EQ(buf, "hello");
}

TEST(FdTest, ReadExactReportsEofAsOutOfRangeWithPartialCount) {
  absl::StatusOr<FdPair> p = MakePipe();
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(WriteAll(p->write.get(), "abc").ok());
  p->write.reset();
  char buf[8];
  size_t got = 99;
  absl::Status st = ReadExact(p->read.get(), buf, sizeof(buf), &got);
  EXPECT_EQ(st.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(got, 3u);
}

TEST(FdTest, WriteToClosedReaderIsOutOfRangeNotSigpipe) {
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<FdPair> p = MakePipe();
  ASSERT_TRUE(p.ok());
  p->read.reset();
  EXPECT_EQ(WriteAll(p->write.get(), "x").code(),
            absl::StatusCode::kOutOfRange);
}

TEST(FdTest, WaitReadableTimesOutThenSeesData) {
  absl::StatusOr<FdPair> p = MakePipe();
  ASSERT_TRUE(p.ok());
  absl::Time start = absl::Now();
  absl::StatusOr<bool> r = WaitReadable(p->read.get(), absl::Milliseconds(30));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  ASSERT_TRUE(WriteAll(p->write.get(), "x").ok());
  r = WaitReadable(p->read.get(), absl::ZeroDuration());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
}

TEST(FdTest, NonBlockingReadOfEmptyPipeIsAnErrnoStatus) {
  absl::StatusOr<FdPair> p = MakePipe();
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(SetNonBlocking(p->read.get()).ok());
  char c;
  absl::StatusOr<size_t> n = ReadSome(p->read.get(), &c, 1);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kUnavailable);  // EAGAIN
}

// An fd sent with bytes arrives with the read that returns the first of
// them (which may return earlier bytes too, and ends with the last of them);
// reads before and after carry none.
TEST(FdTest, SendWithFdPassesAnFdWithTheFirstByte) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<FdPair> sock = MakeSocketPair();
    ASSERT_TRUE(sock.ok());
    absl::StatusOr<FdPair> pipe = MakePipe();
    ASSERT_TRUE(pipe.ok());
    ASSERT_TRUE(WriteAll(sock->write.get(), "ab").ok());
    ASSERT_TRUE(SendWithFd(sock->write.get(), "cdef", pipe->write.get()).ok());
    ASSERT_TRUE(WriteAll(sock->write.get(), "gh").ok());
    pipe->write.reset();  // the receiver's copy keeps the pipe open
    UniqueFd got;
    char buf[16];
    ASSERT_EQ(ReceiveWithFd(sock->read.get(), buf, 1, &got), 1);
    EXPECT_FALSE(got) << "an fd came with a byte sent without one";
    ASSERT_EQ(ReceiveWithFd(sock->read.get(), buf, sizeof buf, &got), 5);
    EXPECT_EQ(std::string(buf, 5), "bcdef");
    ASSERT_TRUE(got);
    EXPECT_TRUE(fcntl(got.get(), F_GETFD) & FD_CLOEXEC);
    ASSERT_TRUE(WriteAll(got.get(), "x").ok());  // it is the pipe
    char c;
    ASSERT_TRUE(ReadExact(pipe->read.get(), &c, 1).ok());
    EXPECT_EQ(c, 'x');
    UniqueFd none;
    ASSERT_EQ(ReceiveWithFd(sock->read.get(), buf, sizeof buf, &none), 2);
    EXPECT_EQ(std::string(buf, 2), "gh");
    EXPECT_FALSE(none);
    sock->write.reset();
    EXPECT_EQ(ReceiveWithFd(sock->read.get(), buf, sizeof buf, &none), 0);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(FdTest, SendWithFdRefusesNoDataAndWhatIsNotASocket) {
  absl::StatusOr<FdPair> pipe = MakePipe();
  ASSERT_TRUE(pipe.ok());
  EXPECT_EQ(SendWithFd(pipe->write.get(), "", pipe->read.get()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(SendWithFd(pipe->write.get(), "x", pipe->read.get()).ok());
  UniqueFd got;
  char c;
  errno = 0;
  EXPECT_EQ(ReceiveWithFd(pipe->read.get(), &c, 1, &got), -1);
  EXPECT_EQ(errno, ENOTSOCK);
}

absl::Status UsesMacros(bool fail, int* out) {
  MP_RETURN_IF_ERROR(fail ? absl::InternalError("boom") : absl::OkStatus());
  MP_ASSIGN_OR_RETURN(*out, absl::StatusOr<int>(7));
  return absl::OkStatus();
}

TEST(StatusMacrosTest, ReturnIfErrorAndAssignOrReturn) {
  int v = 0;
  EXPECT_EQ(UsesMacros(true, &v).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(UsesMacros(false, &v).ok());
  EXPECT_EQ(v, 7);
}

}  // namespace
}  // namespace mp

namespace mp {
namespace {

TEST(LeakCheckTest, SeesANewChildUntilItIsReapedAndANewFd) {
  testing::LeakCheck leaks;
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  // Unreaped, the child is a zombie and still ours.
  EXPECT_FALSE(leaks.Verify(absl::Milliseconds(50)).ok());
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  absl::StatusOr<FdPair> p = MakePipe();
  ASSERT_TRUE(p.ok());
  absl::Status st = leaks.Verify(absl::ZeroDuration());
  EXPECT_NE(st.message().find("fds"), absl::string_view::npos) << st;
  p->read.reset();
  p->write.reset();
  EXPECT_TRUE(leaks.Verify(absl::ZeroDuration()).ok());
}

TEST(LeakCheckTest, SurvivesProcessesExitingWhileItReadsProc) {
  // Processes come and go while /proc is scanned: never an exception.
  std::vector<pid_t> kids;
  for (int i = 0; i < 20; ++i) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    kids.push_back(pid);
  }
  for (int round = 0; round < 20; ++round) {
    testing::LeakCheck leaks;
    (void)testing::ChildPids();
  }
  for (pid_t pid : kids) waitpid(pid, nullptr, 0);
}

}  // namespace
}  // namespace mp
