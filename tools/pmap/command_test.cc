#include "tools/pmap/command.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mp {
namespace pmap {
namespace {

using ::testing::ElementsAre;

JobValues One(std::vector<std::string> values, int64_t seq = 1, int slot = 1) {
  JobValues v;
  v.args.push_back(std::move(values));
  v.seq = seq;
  v.slot = slot;
  return v;
}

CommandTemplate Parse(std::vector<std::string> words, bool no_shell = false) {
  absl::StatusOr<CommandTemplate> t = CommandTemplate::Parse(words, no_shell);
  EXPECT_TRUE(t.ok()) << t.status();
  return *std::move(t);
}

TEST(ShellQuoteTest, LikeGnuParallel) {
  EXPECT_EQ(ShellQuote("abc"), "abc");
  EXPECT_EQ(ShellQuote("a.b/c-d_e+f"), "a.b/c-d_e+f");
  EXPECT_EQ(ShellQuote("-n"), "-n");
  EXPECT_EQ(ShellQuote(""), "''");
  EXPECT_EQ(ShellQuote("a b"), "'a b'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\"'\"'s'");
  EXPECT_EQ(ShellQuote("a'"), "'a'\"'\"");
  EXPECT_EQ(ShellQuote("'"), "\"'\"");
  EXPECT_EQ(ShellQuote("$x"), "'$x'");
  EXPECT_EQ(ShellQuote("a=b"), "'a=b'");
  EXPECT_EQ(ShellQuote("a\nb"), "'a\nb'");
}

TEST(TransformTest, PathPieces) {
  EXPECT_EQ(RemoveExtension("/x/y.tar.gz"), "/x/y.tar");
  EXPECT_EQ(RemoveExtension("a.b/c"), "a.b/c");
  EXPECT_EQ(Basename("/x/y.tar.gz"), "y.tar.gz");
  EXPECT_EQ(Basename("z"), "z");
  EXPECT_EQ(Dirname("/x/y"), "/x");
  EXPECT_EQ(Dirname("z"), ".");
  EXPECT_EQ(Dirname("/x"), "/");
  EXPECT_EQ(Dirname("a/b/"), "a");
}

TEST(CommandTemplateTest, AppendsAllWhenNoReplacement) {
  CommandTemplate t = Parse({"gzip", "-9"});
  EXPECT_FALSE(t.has_replacement());
  EXPECT_EQ(t.ShellCommand(One({"my file"})), "gzip -9 'my file'");
  EXPECT_THAT(t.Argv(One({"my file"})), ElementsAre("gzip", "-9", "my file"));
}

TEST(CommandTemplateTest, Replacements) {
  CommandTemplate t = Parse({"x", "{}", "{.}", "{/}", "{//}", "{/.}", "{#}", "{%}"});
  EXPECT_EQ(t.ShellCommand(One({"/d/f.txt"}, 7, 2)),
            "x /d/f.txt /d/f f.txt /d f 7 2");
}

TEST(CommandTemplateTest, PositionalAndMultipleArgs) {
  CommandTemplate t = Parse({"echo", "{2}-{1}", "{1.}"});
  EXPECT_EQ(t.ShellCommand(One({"a.x", "b c"})), "echo 'b c'-a.x a");
  JobValues two;
  two.args = {{"a"}, {"b"}, {"c"}};
  CommandTemplate all = Parse({"echo", "x{}y"});
  EXPECT_EQ(all.ShellCommand(two), "echo xa b cy");
  EXPECT_THAT(all.Argv(two), ElementsAre("echo", "xa", "b", "cy"));
  EXPECT_EQ(Parse({"echo", "{3}", "{9}"}).ShellCommand(two), "echo c ''");
}

TEST(CommandTemplateTest, HostileValuesAreQuoted) {
  CommandTemplate t = Parse({"echo {} | cat"});
  EXPECT_EQ(t.ShellCommand(One({"$(rm -rf /); `x` 'q' \"d\""})),
            "echo '$(rm -rf /); `x` '\"'\"'q'\"'\"' \"d\"' | cat");
}

TEST(CommandTemplateTest, UnknownBracesStayLiteral) {
  CommandTemplate t = Parse({"awk", "{print}", "{}"});
  EXPECT_EQ(t.ShellCommand(One({"f"})), "awk {print} f");
  CommandTemplate u = Parse({"echo", "{", "}{"});
  EXPECT_FALSE(u.has_replacement());
}

TEST(CommandTemplateTest, Captures) {
  CommandTemplate t = Parse({"echo", "{m2}{m1}", "{m9}"});
  JobValues v = One({"ignored"});
  v.captures = {{"a", "b"}};
  EXPECT_EQ(t.ShellCommand(v), "echo ba ''");
}

TEST(CommandTemplateTest, NoShellKeepsWordsIntact) {
  CommandTemplate t = Parse({"printf", "%s\\n", "{}"}, /*no_shell=*/true);
  EXPECT_THAT(t.Argv(One({"a b"})), ElementsAre("printf", "%s\\n", "a b"));
  EXPECT_EQ(t.DirectProgram(), "");
}

TEST(CommandTemplateTest, DirectProgramOnlyForPlainCommands) {
  EXPECT_EQ(Parse({"gzip", "-9", "{}"}).DirectProgram(), "gzip");
  EXPECT_EQ(Parse({"sleep"}).DirectProgram(), "sleep");
  EXPECT_EQ(Parse({"echo", "{}"}).DirectProgram(), "");  // builtin
  EXPECT_EQ(Parse({"true"}).DirectProgram(), "");
  EXPECT_EQ(Parse({"gzip {} | wc"}).DirectProgram(), "");
  EXPECT_EQ(Parse({"gzip", "$HOME"}).DirectProgram(), "");
  EXPECT_EQ(Parse({"A=1", "gzip"}).DirectProgram(), "");
  EXPECT_EQ(Parse({"{}", "x"}).DirectProgram(), "");
  EXPECT_EQ(Parse({"gzip", "*.c"}).DirectProgram(), "");
}

TEST(CommandTemplateTest, EmptyCommandIsAnError) {
  EXPECT_FALSE(CommandTemplate::Parse({}, false).ok());
  EXPECT_FALSE(CommandTemplate::Parse({""}, false).ok());
}

}  // namespace
}  // namespace pmap
}  // namespace mp
