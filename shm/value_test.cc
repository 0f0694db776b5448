#include "shm/value.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"
#include "shm/internal/test_prefix.h"
#include "process/spawn.h"
#include "shm/array.h"
#include "sync/guard.h"

namespace mp {
namespace {

using shm_internal::TestPrefix;

pid_t SpawnHelper(std::vector<std::string> args) {
  SpawnOptions o;
  o.argv = {absl::StrCat(std::getenv("TEST_SRCDIR"), "/",
                         std::getenv("TEST_WORKSPACE"),
                         "/shm/value_test_helper")};
  for (auto& a : args) o.argv.push_back(a);
  absl::StatusOr<pid_t> pid = Spawn(o);
  EXPECT_TRUE(pid.ok()) << pid.status();
  return pid.ok() ? *pid : -1;
}

struct Point {
  int32_t x, y;
};

class ValueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Starts this process's shm tracker before the leak checks.
    absl::StatusOr<Value<int>> warm = Value<int>::Create(0);
    ASSERT_TRUE(warm.ok());
  }
};

TEST_F(ValueTest, GetSetAndLock) {
  absl::StatusOr<Value<Point>> v = Value<Point>::Create(Point{1, 2});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->Get().x, 1);
  v->Set(Point{3, 4});
  EXPECT_EQ(v->value().y, 4);
  ASSERT_NE(v->GetLock(), nullptr);
  {
    Guard g(*v->GetLock());
    v->value().x += 10;
    EXPECT_EQ(v->Get().x, 13);  // the lock is recursive
  }
  EXPECT_FALSE(v->GetLock()->Locked());
  absl::StatusOr<Value<Point>> same = Value<Point>::Attach(v->name());
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->Get().x, 13);
}

TEST_F(ValueTest, UnlockedAndRawValues) {
  absl::StatusOr<Value<double>> v = Value<double>::Create(1.5, /*lock=*/false);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->GetLock(), nullptr);
  v->Set(2.5);
  EXPECT_EQ(v->Get(), 2.5);
  absl::StatusOr<RawValue<double>> r = RawValue<double>::Create(7);
  ASSERT_TRUE(r.ok());
  r->value() += 1;
  EXPECT_EQ(r->Get(), 8);
  absl::StatusOr<RawValue<double>> r2 = RawValue<double>::Attach(r->name());
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->Get(), 8);
}

TEST_F(ValueTest, AttachRejectsOtherTypesAndShapes) {
  absl::StatusOr<Value<int64_t>> v = Value<int64_t>::Create(1);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(Value<double>::Attach(v->name()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Value<int64_t>::Attach("psm_missing_value").status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<Array<int64_t>> a = Array<int64_t>::Create(3);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(Value<int64_t>::Attach(a->name()).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<SharedMemory> junk = SharedMemory::Create(4096);
  ASSERT_TRUE(junk.ok());
  EXPECT_EQ(Value<int64_t>::Attach(junk->name()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Array<int64_t>::Attach(junk->name()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ValueTest, ForkAndSpawnedChildrenIncrementUnderTheLock) {
  testing::LeakCheck leaks(TestPrefix());
  {
    absl::StatusOr<Value<int64_t>> v = Value<int64_t>::Create(0);
    ASSERT_TRUE(v.ok());
    pid_t forked = fork();
    ASSERT_GE(forked, 0);
    if (forked == 0) {
      for (int i = 0; i < 5000; ++i) {
        Guard g(*v->GetLock());
        v->value() += 1;
      }
      _exit(0);
    }
    pid_t spawned = SpawnHelper({"value-add", v->name(), "5000"});
    for (int i = 0; i < 5000; ++i) {
      Guard g(*v->GetLock());
      v->value() += 1;
    }
    int st = 0;
    ASSERT_EQ(waitpid(forked, &st, 0), forked);
    EXPECT_EQ(st, 0);
    ASSERT_EQ(waitpid(spawned, &st, 0), spawned);
    EXPECT_EQ(st, 0);
    EXPECT_EQ(v->Get(), 15000);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST_F(ValueTest, ArrayIndexSliceIterate) {
  absl::StatusOr<Array<int32_t>> a = Array<int32_t>::Create({1, 2, 3, 4});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->size(), 4u);
  EXPECT_EQ((*a)[2], 3);
  (*a)[0] = 10;
  EXPECT_EQ(*a->Get(0), 10);
  ASSERT_TRUE(a->Set(1, 20).ok());
  EXPECT_EQ(*a->Slice(0, 2), (std::vector<int32_t>{10, 20}));
  EXPECT_TRUE(a->Slice(4, 4)->empty());
  int32_t sum = 0;
  for (int32_t x : *a) sum += x;
  EXPECT_EQ(sum, 10 + 20 + 3 + 4);
  ASSERT_TRUE(a->SetSlice(2, std::vector<int32_t>{7, 8}).ok());
  EXPECT_EQ(a->span()[3], 8);
  // Bad input.
  EXPECT_EQ(a->Get(4).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(a->Set(9, 1).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(a->Slice(3, 2).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(a->Slice(0, 5).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(a->SetSlice(3, std::vector<int32_t>{1, 2}).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Array<int32_t>::Create(SIZE_MAX / 2).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ValueTest, ArraysOfSizeZeroAndRawArrays) {
  absl::StatusOr<Array<char>> empty = Array<char>::Create(0);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->size(), 0u);
  EXPECT_EQ(empty->begin(), empty->end());
  absl::StatusOr<RawArray<double>> r = RawArray<double>::Create(3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->GetLock(), nullptr);
  EXPECT_EQ((*r)[1], 0.0);
  ASSERT_TRUE(r->Set(1, 2.0).ok());
  absl::StatusOr<RawArray<double>> r2 = RawArray<double>::Attach(r->name());
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ((*r2)[1], 2.0);
}

TEST_F(ValueTest, SpawnedChildFillsAnArrayByName) {
  testing::LeakCheck leaks(TestPrefix());
  {
    absl::StatusOr<Array<int32_t>> a = Array<int32_t>::Create(100);
    ASSERT_TRUE(a.ok());
    pid_t pid = SpawnHelper({"array-square", a->name()});
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    for (int i = 0; i < 100; ++i) EXPECT_EQ((*a)[i], i * i);
  }
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace mp
