#include "tools/pmap/inputs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "process/leak_check.h"

namespace mp {
namespace pmap {
namespace {

using ::testing::ElementsAre;

std::string WriteFile(const std::string& name, const std::string& content) {
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << content;
  return path;
}

std::vector<std::vector<std::string>> All(const Options& o,
                                          InputGenerator** keep = nullptr) {
  absl::StatusOr<std::unique_ptr<InputGenerator>> g = InputGenerator::Create(o);
  EXPECT_TRUE(g.ok()) << g.status();
  std::vector<std::vector<std::string>> out;
  if (!g.ok()) return out;
  while (true) {
    absl::StatusOr<std::optional<Input>> in = (*g)->Next();
    EXPECT_TRUE(in.ok());
    if (!in.ok() || !in->has_value()) break;
    std::vector<std::string> row = (*in)->values;
    for (const std::string& c : (*in)->captures) row.push_back("m:" + c);
    out.push_back(row);
  }
  return out;
}

InputSource Args(std::vector<std::string> v, bool linked = false) {
  InputSource s;
  s.values = std::move(v);
  s.linked = linked;
  return s;
}

TEST(RecordReaderTest, SplitsOnDelimiter) {
  testing::LeakCheck leaks;
  {
    std::string path = WriteFile("r", "a\n\nb c\nlast");
    RecordReader r(::open(path.c_str(), O_RDONLY | O_CLOEXEC), true, "\n");
    std::vector<std::string> got;
    while (true) {
      auto rec = r.Next();
      ASSERT_TRUE(rec.ok());
      if (!rec->has_value()) break;
      got.push_back(**rec);
    }
    EXPECT_THAT(got, ElementsAre("a", "", "b c", "last"));
  }
  EXPECT_TRUE(leaks.Verify().ok());
}

TEST(RecordReaderTest, MultiByteAndNulDelimiters) {
  std::string path = WriteFile("n", std::string("x\0y\0", 4));
  EXPECT_THAT(ReadAllRecords(path, std::string(1, '\0')).value(),
              ElementsAre("x", "y"));
  path = WriteFile("m", "a::b::");
  EXPECT_THAT(ReadAllRecords(path, "::").value(), ElementsAre("a", "b"));
  EXPECT_THAT(ReadAllRecords(WriteFile("e", ""), "\n").value(),
              ElementsAre());
}

TEST(InputGeneratorTest, CrossProductAndLinks) {
  Options o;
  o.sources = {Args({"a", "b"}), Args({"1", "2"})};
  EXPECT_THAT(All(o), ElementsAre(ElementsAre("a", "1"), ElementsAre("a", "2"),
                                  ElementsAre("b", "1"), ElementsAre("b", "2")));
  o.sources = {Args({"a", "b"}), Args({"1", "2", "3"}, true)};
  EXPECT_THAT(All(o), ElementsAre(ElementsAre("a", "1"), ElementsAre("b", "2")));
  o.sources = {Args({"a"}), Args({})};
  EXPECT_TRUE(All(o).empty());
}

TEST(InputGeneratorTest, FileSourcesMixWithArgs) {
  Options o;
  InputSource f;
  f.kind = InputSource::kFile;
  f.path = WriteFile("f", "x\ny\n");
  o.sources = {Args({"1"}), f};
  EXPECT_THAT(All(o), ElementsAre(ElementsAre("1", "x"), ElementsAre("1", "y")));
  o.sources = {f};  // streamed
  EXPECT_THAT(All(o), ElementsAre(ElementsAre("x"), ElementsAre("y")));
}

TEST(InputGeneratorTest, ColsepMatchFilterSkipEmpty) {
  Options o;
  o.sources = {Args({"a\tb", "c", ""})};
  o.colsep = "\t";
  EXPECT_THAT(All(o), ElementsAre(ElementsAre("a", "b"), ElementsAre("c"),
                                  ElementsAre("")));
  o.colsep.clear();
  o.skip_empty = true;
  EXPECT_EQ(All(o).size(), 2u);
  o.skip_empty = false;
  o.sources = {Args({"f1.txt", "g.c", "f22.txt"})};
  o.filter = "^f";
  EXPECT_EQ(All(o).size(), 2u);
  o.filter.clear();
  o.match = "f(\\d+)\\.(txt)";
  absl::StatusOr<std::unique_ptr<InputGenerator>> g = InputGenerator::Create(o);
  ASSERT_TRUE(g.ok());
  std::vector<std::string> caps;
  while (true) {
    auto in = (*g)->Next();
    ASSERT_TRUE(in.ok());
    if (!in->has_value()) break;
    caps.push_back((*in)->captures[0] + "," + (*in)->captures[1]);
  }
  EXPECT_THAT(caps, ElementsAre("1,txt", "22,txt"));
  EXPECT_EQ((*g)->skipped_by_match(), 1);
}

TEST(InputGeneratorTest, Errors) {
  Options o;
  o.sources = {Args({"a"})};
  o.colsep = "(";
  EXPECT_EQ(InputGenerator::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.colsep.clear();
  o.match = "[";
  EXPECT_EQ(InputGenerator::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.match.clear();
  InputSource f;
  f.kind = InputSource::kFile;
  f.path = "/nonexistent/inputs";
  o.sources = {f};
  EXPECT_EQ(InputGenerator::Create(o).status().code(),
            absl::StatusCode::kNotFound);
  o.sources = {Args({"a"}), f};
  EXPECT_EQ(InputGenerator::Create(o).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pmap
}  // namespace mp
