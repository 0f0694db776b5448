// The example in README.md ("The library in ten lines"), compiled and run.
// Keep the two in sync: the body of ReadmeExample() below is the README's.

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ipc/queue.h"
#include "pool/pool.h"
#include "process/leak_check.h"
#include "process/process.h"
#include "process/status_macros.h"

namespace {

int Square(int x) { return x * x; }

absl::Status ReadmeExample(std::vector<int>* out_squares, int64_t* out_v) {
  // ---- README begins (after `int Square(int x)`) ----
  mp::Pool pool({.processes = 4});                          // Python: Pool(4)
  absl::StatusOr<std::vector<int>> squares = pool.Map(Square, std::vector<int>{1, 2, 3});
  absl::StatusOr<mp::Queue<int64_t>> q = mp::Queue<int64_t>::Create(/*maxsize=*/100);
  mp::Process child([q = *q]() mutable { (void)q.Put(42); });  // fork: any callable
  MP_RETURN_IF_ERROR(child.Start());
  absl::StatusOr<int64_t> v = q->Get(absl::Seconds(1));     // kUnavailable = queue.Empty
  MP_RETURN_IF_ERROR(child.Join());                         // child.exitcode() == 0
  // ---- README ends ----
  MP_RETURN_IF_ERROR(squares.status());
  MP_RETURN_IF_ERROR(v.status());
  *out_squares = *squares;
  *out_v = *v;
  EXPECT_EQ(child.exitcode(), 0);
  return absl::OkStatus();
}

TEST(ReadmeExampleTest, RunsAsDocumented) {
  mp::testing::LeakCheck leaks;
  std::vector<int> squares;
  int64_t v = 0;
  absl::Status st = ReadmeExample(&squares, &v);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(squares, (std::vector<int>{1, 4, 9}));
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(leaks.Verify().ok());
}

}  // namespace
