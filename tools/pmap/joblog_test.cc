#include "tools/pmap/joblog.h"

#include <cstdlib>
#include <fstream>

#include "gtest/gtest.h"

namespace mp {
namespace pmap {
namespace {

TEST(JoblogTest, FormatsLikeGnuParallel) {
  JoblogEntry e;
  e.seq = 3;
  e.start = 1795314004.7225;
  e.runtime = 0.0041;
  e.receive = 2;
  e.exitval = 1;
  e.command = "echo 1; exit 1";
  EXPECT_EQ(FormatJoblogLine(e),
            "3\t:\t1795314004.723\t     0.004\t0\t2\t1\t0\techo 1; exit 1\n");
  EXPECT_EQ(JoblogHeader(),
            "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\t"
            "Signal\tCommand\n");
}

TEST(JoblogTest, ReadsHistoryForResume) {
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/log";
  {
    std::ofstream f(path);
    f << JoblogHeader();
    JoblogEntry ok, bad, killed;
    ok.seq = 1;
    bad.seq = 2;
    bad.exitval = 3;
    killed.seq = 4;
    killed.exitval = -1;
    killed.signal = 15;
    f << FormatJoblogLine(ok) << FormatJoblogLine(bad)
      << FormatJoblogLine(killed) << "garbage line\n";
  }
  absl::StatusOr<JoblogHistory> h = ReadJoblog(path);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(h->ShouldSkip(1, false));
  EXPECT_TRUE(h->ShouldSkip(2, false));
  EXPECT_FALSE(h->ShouldSkip(3, false));
  EXPECT_TRUE(h->ShouldSkip(1, true));
  EXPECT_FALSE(h->ShouldSkip(2, true));
  EXPECT_FALSE(h->ShouldSkip(4, true));
}

TEST(JoblogTest, MissingFileIsEmptyHistory) {
  absl::StatusOr<JoblogHistory> h = ReadJoblog("/nonexistent/pmap.log");
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->succeeded.empty());
}

}  // namespace
}  // namespace pmap
}  // namespace mp
