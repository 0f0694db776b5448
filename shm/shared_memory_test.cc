#include "shm/shared_memory.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "process/fd.h"
#include "process/internal/test_util.h"
#include "process/leak_check.h"
#include "process/spawn.h"
#include "shm/internal/tracker.h"

namespace mp {
namespace {

using ::mp::testing::Eventually;
using ::mp::testing::ProcessGoneOrZombie;
using ::mp::testing::ShmExists;
using ::mp::testing::ReadProcFile;

std::string HelperPath() {
  return testing::RunfilesPath("shm/shared_memory_test_helper");
}

class SharedMemoryTest : public ::testing::Test {
 protected:
  const std::string kPrefix = absl::StrCat("psm_", getpid(), "_");
  void SetUp() override {
    // Our default names only, so that leak checks ignore other tests'.
    shm_internal::SetNamePrefixForTesting(kPrefix);
    // Start this process's tracker before the leak checks snapshot: it is a
    // process-wide helper, not a per-test resource.
    absl::StatusOr<SharedMemory> warm = SharedMemory::Create(1);
    ASSERT_TRUE(warm.ok()) << warm.status();
  }
};

TEST_F(SharedMemoryTest, CreateAndAttachShareBytes) {
  testing::LeakCheck leaks(kPrefix);
  {
    absl::StatusOr<SharedMemory> a = SharedMemory::Create(100);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->size(), 100u);
    EXPECT_TRUE(a->owner());
    EXPECT_EQ(a->span().size(), 100u);
    std::memcpy(a->data(), "hello", 5);
    absl::StatusOr<SharedMemory> b = SharedMemory::Attach(a->name());
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_FALSE(b->owner());
    EXPECT_EQ(b->size(), 100u);
    EXPECT_EQ(std::string(b->data(), 5), "hello");
    b->data()[0] = 'j';
    EXPECT_EQ(a->data()[0], 'j');
    // A leading '/' is accepted, as by shm_open.
    absl::StatusOr<SharedMemory> c = SharedMemory::Attach("/" + a->name());
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->name(), a->name());
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST_F(SharedMemoryTest, DefaultNameIsPythonStyleAndModeIs0600) {
  shm_internal::SetNamePrefixForTesting("psm_");  // the real default
  absl::StatusOr<SharedMemory> a = SharedMemory::Create(10);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->name().size(), 12u);
  EXPECT_TRUE(absl::StartsWith(a->name(), "psm_"));
  EXPECT_EQ(a->name().find_first_not_of("0123456789abcdef", 4),
            std::string::npos);
  struct stat st;
  ASSERT_EQ(::stat(("/dev/shm/" + a->name()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Zero-filled.
  for (char c : a->span()) EXPECT_EQ(c, 0);
}

TEST_F(SharedMemoryTest, OwnerUnlinksAttacherDoesNot) {
  std::string name;
  {
    absl::StatusOr<SharedMemory> a = SharedMemory::Create(10);
    ASSERT_TRUE(a.ok());
    name = a->name();
    { absl::StatusOr<SharedMemory> b = SharedMemory::Attach(name); }
    EXPECT_TRUE(ShmExists(name));
    ASSERT_TRUE(a->Close().ok());
    EXPECT_TRUE(a->Close().ok());  // idempotent
    EXPECT_FALSE(a->mapped());
    EXPECT_TRUE(ShmExists(name));  // Close does not unlink
  }
  EXPECT_FALSE(ShmExists(name));
}

TEST_F(SharedMemoryTest, UnlinkAndErrors) {
  absl::StatusOr<SharedMemory> a = SharedMemory::Create(10);
  ASSERT_TRUE(a.ok());
  absl::StatusOr<SharedMemory> b = SharedMemory::Attach(a->name());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->Unlink().ok());  // any process may unlink
  EXPECT_FALSE(ShmExists(a->name()));
  EXPECT_EQ(a->Unlink().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(SharedMemory().Unlink().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(b->data()[0], 0);  // mappings stay valid
}

TEST_F(SharedMemoryTest, BadInput) {
  EXPECT_EQ(SharedMemory::Create(0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SharedMemory::Create(1, "/").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SharedMemory::Create(1, "a/b").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SharedMemory::Create(1, std::string(300, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SharedMemory::Attach("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SharedMemory::Attach("psm_no_such_segment_here").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(SharedMemory::Open("psm_no_such_segment_here", false).status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<SharedMemory> a = SharedMemory::Create(10);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(SharedMemory::Create(10, a->name()).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(ShmExists(a->name()));  // the failed create did not unlink it
}

TEST_F(SharedMemoryTest, NamedCreateViaOpen) {
  const std::string name = RandomSharedMemoryName();
  absl::StatusOr<SharedMemory> a = SharedMemory::Open(name, true, 5000);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->name(), name);
  EXPECT_EQ(a->size(), 5000u);
  absl::StatusOr<SharedMemory> b = SharedMemory::Open(name, false);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size(), 5000u);
}

TEST_F(SharedMemoryTest, PopulateAndHugePageOptions) {
  SharedMemory::Options o;
  o.populate = true;
  o.huge_pages = true;
  absl::StatusOr<SharedMemory> a = SharedMemory::Create(4 << 20, "", o);
  ASSERT_TRUE(a.ok()) << a.status();
  a->data()[(4 << 20) - 1] = 1;
  // huge_pages() depends on the kernel's shmem_enabled; either is fine.
  (void)a->huge_pages();
}

TEST_F(SharedMemoryTest, DisownedSegmentOutlivesItsObject) {
  std::string name;
  {
    absl::StatusOr<SharedMemory> a = SharedMemory::Create(10);
    ASSERT_TRUE(a.ok());
    a->Disown();
    EXPECT_FALSE(a->owner());
    name = a->name();
  }
  EXPECT_TRUE(ShmExists(name));
  absl::StatusOr<SharedMemory> b = SharedMemory::Attach(name);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->Unlink().ok());
}

TEST_F(SharedMemoryTest, ForkChildNeverUnlinksTheParentsSegment) {
  testing::LeakCheck leaks(kPrefix);
  absl::StatusOr<SharedMemory> a = SharedMemory::Create(10);
  ASSERT_TRUE(a.ok());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    a->data()[0] = 'c';
    { SharedMemory moved = std::move(*a); }  // runs the destructor
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(ShmExists(a->name()));
  EXPECT_EQ(a->data()[0], 'c');
  a = SharedMemory();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

// Before re-executing the program as the tracker, the creator checks that
// the program loads the tracker's code at start-up (tracker_dlopen_test
// covers a plugin, where it does not).
void LocalFunction() {}

TEST(StartupLoadsObjectAtTest, TrueForThisProgramAndWhatItLinks) {
  EXPECT_TRUE(shm_internal::StartupLoadsObjectAt(
      reinterpret_cast<const void*>(&LocalFunction)));
  // mp, wherever the build put it (this executable or a shared library).
  EXPECT_TRUE(shm_internal::StartupLoadsObjectAt(
      reinterpret_cast<const void*>(&shm_internal::TrackSegment)));
  // The C library, a start-up dependency of any dynamic program.
  EXPECT_TRUE(shm_internal::StartupLoadsObjectAt(
      reinterpret_cast<const void*>(&::getpid)));
}

TEST(StartupLoadsObjectAtTest, FalseForAnAddressInNoObject) {
  auto heap = std::make_unique<int>(0);
  int stack = 0;
  EXPECT_FALSE(shm_internal::StartupLoadsObjectAt(heap.get()));
  EXPECT_FALSE(shm_internal::StartupLoadsObjectAt(&stack));
  EXPECT_FALSE(shm_internal::StartupLoadsObjectAt(nullptr));
}

// The tracker is this program re-executed: a separate, fresh process, not a
// fork()ed copy pinning our memory, nor a CLONE_VM sibling the OOM killer
// would take down with us.
long VmSizeKb(pid_t pid) {
  for (absl::string_view line : absl::StrSplit(
           ReadProcFile(absl::StrCat("/proc/", pid, "/status")), '\n')) {
    long kb = 0;
    if (absl::StartsWith(line, "VmSize:") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(
                             absl::StripAsciiWhitespace(line.substr(7)), "kB")),
                         &kb)) {
      return kb;
    }
  }
  return -1;
}

TEST_F(SharedMemoryTest, TrackerIsAFreshProcessOfItsOwn) {
  const pid_t tracker = shm_internal::TrackerPid();
  ASSERT_GT(tracker, 0);
  EXPECT_EQ(ReadProcFile(absl::StrCat("/proc/", tracker, "/cmdline")),
            std::string("mp-shm-tracker", 15));  // with the NUL
  const long before = VmSizeKb(tracker);
  ASSERT_GT(before, 0);
  constexpr size_t kBig = 256 << 20;
  void* p = mmap(nullptr, kBig, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_LT(VmSizeKb(tracker) - before, static_cast<long>(kBig / 1024));
  munmap(p, kBig);
}

void ForkChildCreates(const std::string& prefix, bool clone_tracker) {
  testing::LeakCheck leaks(prefix);
  const pid_t parent_tracker = shm_internal::TrackerPid();
  ASSERT_GT(parent_tracker, 0);
  absl::StatusOr<FdPair> report = MakePipe();  // child -> parent
  absl::StatusOr<FdPair> go = MakePipe();      // parent -> child: "exit now"
  ASSERT_TRUE(report.ok() && go.ok());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    go->write.reset();
    // Not owned by the parent's tracker: a new one watches this child.
    if (clone_tracker) shm_internal::UseCloneTrackerForTesting();
    absl::StatusOr<SharedMemory> mine = SharedMemory::Create(10);
    if (!mine.ok()) _exit(1);
    const std::string line = absl::StrCat(mine->name(), " ",
                                          shm_internal::TrackerPid(), "\n");
    if (!WriteAll(report->write.get(), line).ok()) _exit(2);
    char c;
    (void)ReadExact(go->read.get(), &c, 1);  // EOF: the parent looked
    _exit(0);  // no destructor runs: only the child's tracker can unlink
  }
  report->write.reset();
  go->read.reset();
  std::string line;
  char c;
  while (ReadExact(report->read.get(), &c, 1).ok() && c != '\n') line += c;
  report->read.reset();
  std::vector<std::string> parts = absl::StrSplit(line, ' ');
  int child_tracker = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &child_tracker)) {
    ADD_FAILURE() << "bad report: " << line;
  } else {
    EXPECT_NE(child_tracker, parent_tracker);
    // While the child lives, its tracker runs: the program re-executed, or
    // the CLONE_VM fallback (which keeps our program's command line).
    EXPECT_EQ(absl::StartsWith(ReadProcFile(absl::StrCat(
                                   "/proc/", child_tracker, "/cmdline")),
                               "mp-shm-tracker"),
              !clone_tracker);
    EXPECT_TRUE(ShmExists(parts[0]));
  }
  go->write.reset();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(status, 0);
  if (child_tracker > 0) {
    EXPECT_TRUE(Eventually([&] { return !ShmExists(parts[0]); }));
    EXPECT_TRUE(Eventually([&] { return ProcessGoneOrZombie(child_tracker); }));
  }
  EXPECT_FALSE(ProcessGoneOrZombie(parent_tracker));
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST_F(SharedMemoryTest, ForkChildThatCreatesGetsItsOwnTracker) {
  ForkChildCreates(kPrefix, /*clone_tracker=*/false);
}

TEST_F(SharedMemoryTest, FallbackCloneTrackerCleansUpToo) {
  ForkChildCreates(kPrefix, /*clone_tracker=*/true);
}

// A fork child registers a name prefix with its tracker; the parent then
// creates segments (untracked, disowned) with and without that prefix. When
// the child is SIGKILLed, its tracker removes every segment with the prefix,
// whoever created it, and nothing else.
void ForkChildTracksPrefix(const std::string& prefix, bool clone_tracker) {
  testing::LeakCheck leaks(prefix);
  const std::string tracked = absl::StrCat(prefix, "pfx_");
  const std::string dropped = absl::StrCat(prefix, "pfd_");  // untracked again
  absl::StatusOr<FdPair> report = MakePipe();  // child -> parent
  ASSERT_TRUE(report.ok());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (clone_tracker) shm_internal::UseCloneTrackerForTesting();
    if (!shm_internal::TrackPrefix(tracked).ok()) _exit(1);
    if (!shm_internal::TrackPrefix(dropped).ok()) _exit(2);
    shm_internal::UntrackPrefix(dropped);
    if (!WriteAll(report->write.get(), "r").ok()) _exit(3);
    for (;;) pause();
  }
  report->write.reset();
  char c;
  ASSERT_TRUE(ReadExact(report->read.get(), &c, 1).ok());
  report->read.reset();
  SharedMemoryOptions untracked;
  untracked.track = false;
  const std::vector<std::string> doomed = {tracked + "a", tracked + "b_c"};
  const std::vector<std::string> kept = {dropped + "a", prefix + "pfy_a",
                                         prefix + "pf"};
  for (const std::string& name : doomed) {
    absl::StatusOr<SharedMemory> m = SharedMemory::Create(10, name, untracked);
    ASSERT_TRUE(m.ok()) << m.status();
    m->Disown();
  }
  for (const std::string& name : kept) {
    absl::StatusOr<SharedMemory> m = SharedMemory::Create(10, name, untracked);
    ASSERT_TRUE(m.ok()) << m.status();
    m->Disown();
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  for (const std::string& name : doomed) {
    EXPECT_TRUE(Eventually([&] { return !ShmExists(name); }))
        << name << " left behind";
  }
  for (const std::string& name : kept) {
    EXPECT_TRUE(ShmExists(name)) << name << " removed";
    ::shm_unlink(("/" + name).c_str());
  }
  EXPECT_TRUE(leaks.Verify(absl::Seconds(5)).ok()) << leaks.Verify();
}

TEST_F(SharedMemoryTest, TrackedPrefixIsSweptWhenTheOwnerIsKilled) {
  ForkChildTracksPrefix(kPrefix, /*clone_tracker=*/false);
}

TEST_F(SharedMemoryTest, CloneTrackerSweepsATrackedPrefixToo) {
  ForkChildTracksPrefix(kPrefix, /*clone_tracker=*/true);
}

TEST_F(SharedMemoryTest, TrackPrefixRejectsBadPrefixes) {
  EXPECT_EQ(shm_internal::TrackPrefix("").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(shm_internal::TrackPrefix("a/b").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(shm_internal::TrackPrefix(std::string("a\0b", 3)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(shm_internal::TrackPrefix(std::string(252, 'p')).code(),
            absl::StatusCode::kInvalidArgument);
  shm_internal::UntrackPrefix("never_tracked_");  // harmless
}

// Runs the helper in `mode`; returns {segment name, tracker pid} and the pid.
struct Helper {
  pid_t pid = 0;
  std::string name;
  pid_t tracker = 0;
};

Helper StartHelper(const std::string& mode) {
  Helper h;
  absl::StatusOr<FdPair> pipe = MakePipe();
  EXPECT_TRUE(pipe.ok());
  SpawnOptions o;
  o.argv = {HelperPath(), mode};
  o.fds = {{1, pipe->write.get()}};
  absl::StatusOr<pid_t> pid = Spawn(o);
  EXPECT_TRUE(pid.ok()) << pid.status();
  if (!pid.ok()) return h;
  h.pid = *pid;
  pipe->write.reset();
  std::string line;
  char c;
  while (ReadExact(pipe->read.get(), &c, 1).ok() && c != '\n') line += c;
  std::vector<std::string> parts = absl::StrSplit(line, ' ');
  EXPECT_EQ(parts.size(), 2u) << line;
  if (parts.size() == 2) {
    h.name = parts[0];
    int t = 0;
    EXPECT_TRUE(absl::SimpleAtoi(parts[1], &t));
    h.tracker = t;
  }
  return h;
}

void ExpectCleanedUp(const Helper& h, int expected_code) {
  absl::StatusOr<int> code = WaitPid(h.pid);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, expected_code);
  ASSERT_FALSE(h.name.empty());
  EXPECT_TRUE(Eventually([&] { return !ShmExists(h.name); }))
      << h.name << " left behind";
  ASSERT_GT(h.tracker, 0);
  EXPECT_TRUE(Eventually([&] { return ProcessGoneOrZombie(h.tracker); }))
      << "tracker " << h.tracker << " still running";
}

TEST_F(SharedMemoryTest, NoLeftoverAfterNormalExit) {
  testing::LeakCheck leaks(kPrefix);
  ExpectCleanedUp(StartHelper("exit"), 0);
  absl::Status v = leaks.Verify();
  EXPECT_TRUE(v.ok()) << v;
}

TEST_F(SharedMemoryTest, NoLeftoverAfterUncaughtException) {
  testing::LeakCheck leaks(kPrefix);
  ExpectCleanedUp(StartHelper("throw"), -SIGABRT);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST_F(SharedMemoryTest, NoLeftoverAfterSigkillOfTheCreator) {
  testing::LeakCheck leaks(kPrefix);
  Helper h = StartHelper("hang");
  ASSERT_GT(h.pid, 0);
  EXPECT_TRUE(ShmExists(h.name));
  EXPECT_FALSE(ProcessGoneOrZombie(h.tracker));
  ASSERT_EQ(kill(h.pid, SIGKILL), 0);
  ExpectCleanedUp(h, -SIGKILL);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

// Runs /usr/bin/python3 with `script` and `args`; returns its exit code and
// stdout.
absl::StatusOr<std::pair<int, std::string>> RunPython(
    const std::string& script, std::vector<std::string> args,
    std::function<void(const std::string&)> on_first_line = nullptr) {
  absl::StatusOr<FdPair> out = MakePipe();
  if (!out.ok()) return out.status();
  SpawnOptions o;
  o.argv = {"/usr/bin/python3", "-c", script};
  for (auto& a : args) o.argv.push_back(a);
  o.fds = {{1, out->write.get()}};
  absl::StatusOr<pid_t> pid = Spawn(o);
  if (!pid.ok()) return pid.status();
  out->write.reset();
  std::string all;
  char buf[256];
  bool first = true;
  for (;;) {
    absl::StatusOr<size_t> n = ReadSome(out->read.get(), buf, sizeof(buf));
    if (!n.ok() || *n == 0) break;
    all.append(buf, *n);
    if (first && on_first_line && all.find('\n') != std::string::npos) {
      first = false;
      on_first_line(all.substr(0, all.find('\n')));
    }
  }
  absl::StatusOr<int> code = WaitPid(*pid);
  if (!code.ok()) return code.status();
  return std::make_pair(*code, all);
}

TEST_F(SharedMemoryTest, PythonAttachesToOurSegment) {
  testing::LeakCheck leaks(kPrefix);
  {
    absl::StatusOr<SharedMemory> a = SharedMemory::Create(64);
    ASSERT_TRUE(a.ok());
    std::memcpy(a->data(), "from c++", 8);
    const std::string script = R"(
import sys
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1])
# Python's tracker would unlink a segment it merely attached to; undo that.
resource_tracker.unregister(shm._name, "shared_memory")
print(bytes(shm.buf[:8]).decode(), shm.size)
shm.buf[:6] = b"python"
shm.close()
)";
    auto r = RunPython(script, {a->name()});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->first, 0);
    EXPECT_EQ(r->second, "from c++ 64\n");
    EXPECT_EQ(std::string(a->data(), 8), "python++");
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST_F(SharedMemoryTest, WeAttachToPythonsSegment) {
  testing::LeakCheck leaks(kPrefix);
  const std::string script = R"(
import sys
from multiprocessing import shared_memory
shm = shared_memory.SharedMemory(create=True, size=100)
shm.buf[:6] = b"python"
print(shm.name, flush=True)
sys.stdin.read(1) if False else None
import time
for _ in range(1000):
    if bytes(shm.buf[:3]) == b"c++":
        break
    time.sleep(0.01)
print(bytes(shm.buf[:6]).decode())
shm.close()
shm.unlink()
)";
  std::string seen;
  auto r = RunPython(script, {}, [&](const std::string& name) {
    absl::StatusOr<SharedMemory> b = SharedMemory::Attach(name);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_FALSE(b->owner());
    EXPECT_EQ(b->size(), 100u);
    seen = std::string(b->data(), 6);
    std::memcpy(b->data(), "c++", 3);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->first, 0);
  EXPECT_EQ(seen, "python");
  EXPECT_TRUE(absl::EndsWith(r->second, "c++hon\n")) << r->second;
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST_F(SharedMemoryTest, MoveTransfersOwnership) {
  absl::StatusOr<SharedMemory> a = SharedMemory::Create(10);
  ASSERT_TRUE(a.ok());
  const std::string name = a->name();
  SharedMemory b = std::move(*a);
  EXPECT_FALSE(a->owner());
  EXPECT_TRUE(b.owner());
  *a = SharedMemory();
  EXPECT_TRUE(ShmExists(name));
  b = SharedMemory();
  EXPECT_FALSE(ShmExists(name));
}

}  // namespace
}  // namespace mp
