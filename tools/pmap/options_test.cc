#include "tools/pmap/options.h"

#include <signal.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mp {
namespace pmap {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<Options> Parse(std::vector<std::string> args) {
  return ParseArgs(args, 4);
}

TEST(OptionsTest, CommandAndSources) {
  absl::StatusOr<Options> o =
      Parse({"-j2", "-k", "echo", "x", ":::", "a", "b", ":::+", "1", "2",
             "::::", "f1", "f2"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->jobs, 2);
  EXPECT_TRUE(o->keep_order);
  EXPECT_THAT(o->command, ElementsAre("echo", "x"));
  ASSERT_EQ(o->sources.size(), 4u);
  EXPECT_THAT(o->sources[0].values, ElementsAre("a", "b"));
  EXPECT_FALSE(o->sources[0].linked);
  EXPECT_TRUE(o->sources[1].linked);
  EXPECT_EQ(o->sources[2].path, "f1");
  EXPECT_EQ(o->sources[3].kind, InputSource::kFile);
}

TEST(OptionsTest, ValueForms) {
  absl::StatusOr<Options> o =
      Parse({"--jobs=3", "-n", "2", "--timeout", "1.5", "-0", "--tag",
             "--retries=3", "--halt", "now,fail=1", "--delay", "2m", "cmd"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->jobs, 3);
  EXPECT_EQ(o->max_args, 2);
  EXPECT_DOUBLE_EQ(o->timeout, 1.5);
  EXPECT_EQ(o->delimiter, std::string(1, '\0'));
  EXPECT_TRUE(o->tag);
  EXPECT_EQ(o->retries, 3);
  EXPECT_EQ(o->halt.when, HaltSpec::kNow);
  EXPECT_DOUBLE_EQ(o->delay, 120);
}

TEST(OptionsTest, DefaultsAndStopAtCommand) {
  absl::StatusOr<Options> o = Parse({"grep", "-v", "x"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->jobs, 4);
  EXPECT_THAT(o->command, ElementsAre("grep", "-v", "x"));  // -v is grep's
  EXPECT_EQ(o->term_seq.size(), 4u);
  EXPECT_EQ(o->term_seq.back().signal, SIGKILL);
  EXPECT_TRUE(o->sources.empty());
}

TEST(OptionsTest, Jobs) {
  EXPECT_EQ(ParseJobs("0", 4, 1024).value(), 1024);
  EXPECT_EQ(ParseJobs("50%", 4, 1024).value(), 2);
  EXPECT_EQ(ParseJobs("1%", 4, 1024).value(), 1);
  EXPECT_EQ(ParseJobs("+2", 4, 1024).value(), 6);
  EXPECT_EQ(ParseJobs("-10", 4, 1024).value(), 1);
  EXPECT_FALSE(ParseJobs("x", 4, 1024).ok());
  EXPECT_FALSE(ParseJobs("", 4, 1024).ok());
  EXPECT_FALSE(ParseJobs("-x", 4, 1024).ok());
}

TEST(OptionsTest, Halt) {
  HaltSpec h = ParseHalt("soon,fail=20%").value();
  EXPECT_EQ(h.when, HaltSpec::kSoon);
  EXPECT_TRUE(h.percent);
  EXPECT_DOUBLE_EQ(h.count, 20);
  EXPECT_EQ(ParseHalt("never").value().when, HaltSpec::kNever);
  EXPECT_EQ(ParseHalt("2").value().when, HaltSpec::kNow);
  EXPECT_EQ(ParseHalt("now,done=3").value().what, HaltSpec::kDone);
  EXPECT_FALSE(ParseHalt("later,fail=1").ok());
  EXPECT_FALSE(ParseHalt("now,fail=0").ok());
  EXPECT_FALSE(ParseHalt("now,oops=1").ok());
  EXPECT_FALSE(ParseHalt("now").ok());
}

TEST(OptionsTest, TermSeq) {
  std::vector<TermStep> s = ParseTermSeq("INT,100,SIGKILL,5").value();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].signal, SIGINT);
  EXPECT_EQ(s[0].wait_ms, 100);
  EXPECT_EQ(s[1].signal, SIGKILL);
  EXPECT_FALSE(ParseTermSeq("NOPE,1").ok());
  EXPECT_FALSE(ParseTermSeq("TERM,x").ok());
}

TEST(OptionsTest, Delimiter) {
  EXPECT_EQ(UnescapeDelimiter("\\t"), "\t");
  EXPECT_EQ(UnescapeDelimiter("a\\0"), std::string("a\0", 2));
  absl::StatusOr<Options> o = Parse({"-d", ",", "echo"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->delimiter, ",");
}

TEST(OptionsTest, Errors) {
  auto msg = [](std::vector<std::string> a) {
    absl::StatusOr<Options> o = Parse(a);
    EXPECT_FALSE(o.ok());
    return std::string(o.status().message());
  };
  EXPECT_THAT(msg({"--bogus", "echo"}), HasSubstr("unknown option: --bogus"));
  EXPECT_THAT(msg({}), HasSubstr("no command"));
  EXPECT_THAT(msg({":::", "a"}), HasSubstr("no command"));
  EXPECT_THAT(msg({"-j"}), HasSubstr("needs a value"));
  EXPECT_THAT(msg({"-j", "abc", "echo"}), HasSubstr("-j"));
  EXPECT_THAT(msg({"-n", "0", "echo"}), HasSubstr("-n"));
  EXPECT_THAT(msg({"--timeout", "-1", "echo"}), HasSubstr("--timeout"));
  EXPECT_THAT(msg({"--resume", "echo"}), HasSubstr("--joblog"));
  EXPECT_THAT(msg({"-k=1", "echo"}), HasSubstr("takes no value"));
  EXPECT_THAT(msg({"echo", "::::"}), HasSubstr("at least one file"));
  EXPECT_THAT(msg({"echo", ":::+", "a"}), HasSubstr("before it"));
  EXPECT_THAT(msg({"-d", "", "echo"}), HasSubstr("empty"));
}

TEST(OptionsTest, HelpNeedsNoCommand) {
  absl::StatusOr<Options> o = Parse({"--help"});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->help);
  EXPECT_THAT(HelpText(), HasSubstr("--joblog"));
}

}  // namespace
}  // namespace pmap
}  // namespace mp
