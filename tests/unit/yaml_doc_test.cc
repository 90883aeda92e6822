// core/spec/yaml_doc.h: ParseYaml reads flow sequences of plain scalars
// ahead of yaml-cpp. Whatever it reads ahead or leaves, the tree, the
// offsets, the second document's place and the errors must be those of
// yaml-cpp parsing the text whole (ParseYamlWith(text, SIZE_MAX)).
#include "core/spec/yaml_doc.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fuzz/yaml_parse_diff.h"

namespace drover::spec::internal {
namespace {

// Parses `text` both ways; expects the same result, and `read_ahead`
// sequences read ahead.
void ExpectSameParse(const std::string& text, size_t read_ahead) {
  SCOPED_TRACE(text.size() < 200 ? text : text.substr(0, 200) + "...");
  const YamlParse fast = ParseYaml(text);
  const YamlParse whole = ParseYamlWith(text, SIZE_MAX);
  EXPECT_EQ(whole.read_ahead, 0u);
  EXPECT_EQ(YamlParseDiff(fast, whole), "");
  EXPECT_EQ(fast.read_ahead, read_ahead);
}

// Given flow sequences of plain scalars (a matrix's values, a list of
// needs), should read them ahead and build the tree yaml-cpp would.
TEST(YamlDocTest, ReadsAheadFlowSequencesOfPlainScalars) {
  ExpectSameParse("a: [1, 2, 3]\n", 1);
  ExpectSameParse("m: {i: [0, 1, 2], j: [x, y]}\n", 2);
  ExpectSameParse("- [a, b]\n- [c,\n   d]\n", 2);
  ExpectSameParse("a: [-5, +3, .5, 1e3, 0x1F, a-b, a.b, _x, /tmp/x, true, No]\n", 1);
  ExpectSameParse("a: [1, 2]  # a comment\nb: 3\n", 1);
  ExpectSameParse("a: [1,\r\n    2]\r\nb: x\r\n", 1);
  ExpectSameParse("a: [[1, 2], [3, 4]]\n", 2);  // the inner ones
  ExpectSameParse("a: [ 1 ,2 , 3 ]\n", 1);
  ExpectSameParse("[1, 2]\n", 1);
  ExpectSameParse("? [1, 2]\n: x\n", 1);  // an explicit key has no length limit
  // Continuation lines indented less than the key: yaml-cpp takes them.
  ExpectSameParse("a:\n  b: [1, 2,\n3, 4]\nc: 1\n", 1);
}

// Given a '[' that is not a sequence yaml-cpp opens, or items outside
// the narrow form, should parse the text whole, with the same result.
TEST(YamlDocTest, LeavesToYamlCppWhatItDoesNotReadAhead) {
  ExpectSameParse("a: |\n  x: [1, 2]\n", 0);  // a block scalar
  ExpectSameParse("a: >\n  - [1, 2]\n", 0);
  ExpectSameParse("a: \"x: [1, 2]\"\n", 0);
  ExpectSameParse("a: 'x: [1, 2]'\n", 0);
  ExpectSameParse("# b: [1, 2]\na: 1\n", 0);
  ExpectSameParse("a: x, [1, 2]\n", 0);  // a plain scalar
  ExpectSameParse("[1, 2]: x\n", 0);     // a key
  ExpectSameParse("{[1, 2] : x}\n", 0);
  ExpectSameParse("a: [1, null, 2]\n", 0);  // a null is not a scalar
  ExpectSameParse("a: [1, ~, 2]\n", 0);
  ExpectSameParse("a: [1, 2,]\n", 0);
  ExpectSameParse("a: [1, , 2]\n", 0);
  ExpectSameParse("a: [a\n b]\n", 0);  // one scalar, folded: "a b"
  ExpectSameParse("a: [1,\n  2\n]\n", 0);
  ExpectSameParse("a: [1,\t2]\n", 0);
  ExpectSameParse("a: [1, 'x', \"y\"]\n", 0);
  ExpectSameParse("a: [1, x: y]\n", 0);
  ExpectSameParse("a: [1, 2#x]\n", 0);
  ExpectSameParse("a: &x [1, 2]\nb: *x\n", 0);
  ExpectSameParse("a: !!seq [1, 2]\n", 0);
  ExpectSameParse("a: [1, -, 2]\n", 0);
  ExpectSameParse(
      "\xEF\xBB\xBF"
      "a: [1, 2]\n",
      0);  // a byte order mark
}

// Given a text yaml-cpp refuses, or one of two documents, should give
// yaml-cpp's own error and place for the text as written.
TEST(YamlDocTest, ErrorsAndDocumentsAreThoseOfTheWholeText) {
  ExpectSameParse("a: [1, 2]\nb: [\n", 0);
  ExpectSameParse("a: [1, 2]\nb: [3, 4]x\n", 0);
  ExpectSameParse("a: [1,\n---\n]\n", 0);
  ExpectSameParse("a: [1,\n...\n]\n", 0);
  ExpectSameParse("a: [1, 2]\n  b: c\n", 0);
  ExpectSameParse("a: [1, 2]\n---\nb: [3]\n", 0);
  ExpectSameParse("[1, 2] x: y\n", 0);
  ExpectSameParse("- [1, 2] x\n", 0);
  ExpectSameParse("{a: [1,\n 2], b: 3}\n", 1);
  ExpectSameParse(std::string("a: [1, 2]\nb: \"x\\0\"\n"), 1);
  const YamlParse p = ParseYaml("a: [1, 2]\nb: [\n");
  EXPECT_TRUE(p.failed);
  EXPECT_NE(p.error_offset, YamlDoc::kNoOffset);
}

// Given a 20,000-value matrix written the ways generators write one (one
// line; wrapped at 80 columns), should read it ahead whole, every value
// at its own offset.
TEST(YamlDocTest, ReadsALargeMatrixAheadWithItsOffsets) {
  std::string one_line = "version: 1\ntasks:\n  t:\n    run: x\n    matrix: {i: [";
  std::string wrapped = "version: 1\ntasks:\n  t:\n    run: x\n    matrix:\n      i: [";
  size_t column = wrapped.size() - wrapped.rfind('\n');
  for (int i = 0; i < 20000; ++i) {
    const std::string v = std::to_string(i) + (i % 2 ? "" : "-x");
    one_line += (i ? ", " : "") + v;
    if (i > 0) {
      wrapped += ",";
      if (column + v.size() > 78) {
        wrapped += "\n        ";
        column = 8;
      } else {
        wrapped += " ";
        column += 2;
      }
    }
    wrapped += v;
    column += v.size();
  }
  one_line += "]}\n";
  wrapped += "]\n";
  ExpectSameParse(one_line, 1);
  ExpectSameParse(wrapped, 1);

  const YamlParse p = ParseYaml(wrapped);
  ASSERT_TRUE(p.doc.has_value());
  const YamlDoc::Node values =
      p.doc->root().Value(1).Value(0).Value(1).Value(0);  // tasks.t.matrix.i
  ASSERT_EQ(values.size(), 20000u);
  const YamlDoc::Node last = values.Item(19999);
  EXPECT_EQ(last.Scalar(), "19999");
  EXPECT_TRUE(last.IsPlain());
  EXPECT_EQ(wrapped.substr(last.offset(), 6), "19999]");
}

// Given every spec of the fuzz corpus and the example configs, should
// parse each the same both ways (the test runs from the repository root).
TEST(YamlDocTest, EverySpecOfTheCorpusParsesTheSameBothWays) {
  std::vector<std::filesystem::path> files;
  for (const char* dir : {"tests/fuzz/corpus/spec", "tests/fuzz/regressions/spec",
                          "configs/examples", "configs"}) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
  }
  ASSERT_GT(files.size(), 100u);
  size_t read_ahead = 0;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    SCOPED_TRACE(file.string());
    const YamlParse fast = ParseYaml(text.str());
    EXPECT_EQ(YamlParseDiff(fast, ParseYamlWith(text.str(), SIZE_MAX)), "");
    read_ahead += fast.read_ahead;
  }
  EXPECT_GT(read_ahead, 50u);  // the corpus has lists of needs and matrices
}

}  // namespace
}  // namespace drover::spec::internal
