#include "shm/shared_object.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>

#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "shm/internal/test_prefix.h"

namespace mp {
namespace {

using shm_internal::TestPrefix;

struct Counter {
  explicit Counter(int start) : n(start) {}
  std::atomic<int> n;
};

struct Other {
  int x = 0;
};

TEST(SharedObjectTest, CreateAttachAndForkShareOneObject) {
  { absl::StatusOr<SharedObject<Other>> warm = SharedObject<Other>::Create(); }
  testing::LeakCheck leaks(TestPrefix());
  {
    absl::StatusOr<SharedObject<Counter>> c = SharedObject<Counter>::Create(5);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ((*c)->n.load(), 5);
    absl::StatusOr<SharedObject<Counter>> a = SharedObject<Counter>::Attach(c->name());
    ASSERT_TRUE(a.ok()) << a.status();
    (*a)->n += 1;
    EXPECT_EQ((*c)->n.load(), 6);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      (*c)->n += 10;
      _exit(0);
    }
    ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
    EXPECT_EQ((*a)->n.load(), 16);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(SharedObjectTest, AttachChecksTheType) {
  absl::StatusOr<SharedObject<Counter>> c = SharedObject<Counter>::Create(1);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(SharedObject<Other>::Attach(c->name()).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<SharedMemory> raw = SharedMemory::Create(4096);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(SharedObject<Counter>::Attach(raw->name()).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<SharedMemory> tiny = SharedMemory::Create(8);
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(SharedObject<Counter>::Attach(tiny->name()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SharedObject<Counter>::Attach("psm_nonexistent_x").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(SharedObject<Counter>().get(), nullptr);
}

}  // namespace
}  // namespace mp
