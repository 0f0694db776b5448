// A real >2 GiB message (the 12-byte extended header) through a socketpair.
// Manual: needs ~5 GB of memory and a few seconds.
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "ipc/connection.h"
#include "process/leak_check.h"

namespace mp {
namespace {

TEST(ConnectionLargeTest, MessageOverTwoGiB) {
  testing::LeakCheck leaks;
  {
    absl::StatusOr<std::pair<Connection, Connection>> p = Pipe();
    ASSERT_TRUE(p.ok());
    const size_t size = (size_t{2} << 30) + 12345;
    std::string msg(size, 'a');
    msg[size - 1] = 'z';
    std::thread sender([&] { ASSERT_TRUE(p->first.SendBytes(msg).ok()); });
    absl::StatusOr<std::string> got = p->second.RecvBytes();
    sender.join();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->size(), size);
    EXPECT_EQ(got->back(), 'z');
    EXPECT_TRUE(*got == msg);
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

}  // namespace
}  // namespace mp
