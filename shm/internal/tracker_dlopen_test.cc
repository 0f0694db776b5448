// The shm tracker when mp lives in a plugin: this program does not link mp;
// a forked child dlopen()s a shared library that does and creates a
// segment. Re-executing this program would not run mp's tracker (it would
// run this main() again), so the tracker must be the CLONE_VM fallback,
// started at once, and must still unlink the segment when the child is
// SIGKILLed.
#include <dlfcn.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "process/fd.h"
#include "process/internal/test_util.h"
#include "process/leak_check.h"
#include "process/spin.h"

namespace mp {
namespace {

using ::mp::testing::Eventually;
using ::mp::testing::ProcessGoneOrZombie;
using ::mp::testing::ShmExists;

std::string PluginPath() {
  return testing::RunfilesPath("shm/libtracker_dlopen_plugin.so");
}

// The child: loads the plugin, creates `name`, writes "<status> <ms taken>
// <tracker pid> <startup loads plugin>" to `out`, then waits to be killed.
[[noreturn]] void RunChild(int out, const std::string& name) {
  std::string line = "dlopen-failed";
  void* plugin = ::dlopen(PluginPath().c_str(), RTLD_NOW | RTLD_LOCAL);
  if (plugin != nullptr) {
    auto create = reinterpret_cast<int (*)(const char*)>(
        ::dlsym(plugin, "mp_plugin_create"));
    auto tracker =
        reinterpret_cast<int (*)()>(::dlsym(plugin, "mp_plugin_tracker_pid"));
    auto loads = reinterpret_cast<int (*)()>(
        ::dlsym(plugin, "mp_plugin_startup_loads_self"));
    if (create != nullptr && tracker != nullptr && loads != nullptr) {
      const int64_t start = MonotonicNanos();
      const int code = create(name.c_str());
      const int64_t took = (MonotonicNanos() - start) / 1000000;  // ms
      line = absl::StrCat(code, " ", took, " ", tracker(), " ", loads());
    }
  } else {
    std::fprintf(stderr, "dlopen: %s\n", ::dlerror());
  }
  line += "\n";
  (void)WriteAll(out, line);
  for (;;) ::pause();
}

TEST(TrackerDlopenTest, PluginGetsTheCloneTrackerAtOnceAndItCleansUp) {
  const std::string prefix = absl::StrCat("psm_dl", ::getpid(), "_");
  const std::string name = prefix + "seg";
  testing::LeakCheck leaks(prefix);
  absl::StatusOr<FdPair> pipe = MakePipe();
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) RunChild(pipe->write.get(), name);
  pipe->write.reset();

  std::string line;
  char c;
  while (::read(pipe->read.get(), &c, 1) == 1 && c != '\n') line += c;
  pipe->read.reset();
  std::vector<std::string> parts = absl::StrSplit(line, ' ');
  int code = -1, tracker = 0, loads = -1;
  int64_t took_ms = -1;
  const bool parsed = parts.size() == 4 && absl::SimpleAtoi(parts[0], &code) &&
                      absl::SimpleAtoi(parts[1], &took_ms) &&
                      absl::SimpleAtoi(parts[2], &tracker) &&
                      absl::SimpleAtoi(parts[3], &loads);
  EXPECT_TRUE(parsed) << "child said: " << line;
  if (parsed) {
    EXPECT_EQ(code, 0);
    // The plugin is not part of this program's start-up...
    EXPECT_EQ(loads, 0);
    // ...so no attempt to re-execute it (which ran this main() again and
    // waited 5 s for a tracker that never came). A hang check, not a timing.
    EXPECT_LT(took_ms, 3000);
    EXPECT_GT(tracker, 0);
    EXPECT_TRUE(ShmExists(name));
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  if (parsed) {
    EXPECT_TRUE(Eventually([&] { return !ShmExists(name); }))
        << name << " left behind";
    EXPECT_TRUE(Eventually([&] { return ProcessGoneOrZombie(tracker); }))
        << "tracker " << tracker << " still running";
  }
  ::shm_unlink(("/" + name).c_str());  // after a failure only
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace mp

int main(int argc, char** argv) {
  // Without the check before exec, the tracker start re-executed this
  // program: end such a run at once instead of running the tests again.
  if (std::getenv("MP_SHM_TRACKER_PID") != nullptr) return 0;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
