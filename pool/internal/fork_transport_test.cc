#include "pool/internal/fork_transport.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "pool/internal/core.h"
#include "pool/internal/typed.h"
#include "process/leak_check.h"

namespace mp {
namespace pool_internal {
namespace {

std::string Bytes(int n) { return std::string(n, 'b'); }

// Runs one task through a Core over a ForkTransport whose messages are
// limited to `max_payload` bytes.
absl::StatusOr<std::string> RunOne(size_t max_payload, int result_size,
                                   size_t arg_size = 0) {
  auto table = std::make_unique<FunctionTable>();
  table->Add(std::make_shared<CallRunner<std::string (*)(int), int, false>>(&Bytes));
  ForkTransportOptions options;
  options.max_payload = max_payload;
  absl::StatusOr<std::unique_ptr<ForkTransport>> transport =
      ForkTransport::Create(table.get(), options);
  if (!transport.ok()) return transport.status();
  Core core(CoreOptions{.processes = 1}, std::move(table), *std::move(transport));
  absl::Status started = core.Start();
  if (!started.ok()) return started;
  absl::Notification done;
  absl::StatusOr<std::string> got;
  Core::TaskSpec spec;
  spec.function = 0;
  spec.payload = Encode(std::vector<int>{result_size});
  if (arg_size > 0) spec.payload.assign(arg_size, 'a');
  spec.base_index = 0;
  spec.done = [&](absl::StatusOr<std::string> r) {
    got = std::move(r);
    done.Notify();
  };
  absl::StatusOr<std::vector<uint64_t>> ids = core.Submit({std::move(spec)});
  if (!ids.ok()) return ids.status();
  if (!done.WaitForNotificationWithTimeout(absl::Seconds(30))) {
    return absl::DeadlineExceededError("no result");
  }
  core.Close();
  absl::Status joined = core.Join();
  if (!joined.ok()) return joined;
  if (!got.ok()) return got.status();
  absl::StatusOr<std::vector<std::string>> rs = Decode<std::vector<std::string>>(*got);
  if (!rs.ok()) return rs.status();
  return (*rs)[0];
}

TEST(ForkTransportTest, CarriesAResultThroughAWorker) {
  testing::LeakCheck leaks;
  absl::StatusOr<std::string> r = RunOne(1 << 20, 100);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::string(100, 'b'));
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ForkTransportTest, ResultLargerThanAMessageFailsItsTaskClearly) {
  testing::LeakCheck leaks;
  absl::StatusOr<std::string> r = RunOne(1000, 5000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "exceeds the message limit"))
      << r.status();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(ForkTransportTest, ArgumentsLargerThanAMessageAreRefused) {
  testing::LeakCheck leaks;
  absl::StatusOr<std::string> r = RunOne(1000, 1, /*arg_size=*/2000);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

}  // namespace
}  // namespace pool_internal
}  // namespace mp
