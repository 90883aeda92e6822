// core/spec: the errors of a task's matrix (docs/spec.md, "Matrix"): not
// a map, empty, values that are not scalars or lists, duplicates, and the
// caps on instances and on the edges between them, each with
// FILE:LINE:COL. As spec_errors_test.cc: the exact line:column and the key
// words of the message; YAML snippets start on the line after R"(.
#include <algorithm>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "core/spec/job_spec.h"
#include "tests/unit/spec_test_util.h"

namespace drover::spec {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

using test_util::Dump;
using test_util::HasOnlyError;
using test_util::Load;
using test_util::Spec;

// Given a matrix that is a list, should say it must be a map.
TEST(SpecErrorTest, MatrixNotAMap) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    matrix: [1, 2]
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 13, {"'matrix'", "must be a map", "got a list"}));
}

// Given a matrix key with an empty list, should say it has no values.
TEST(SpecErrorTest, MatrixEmptyList) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    matrix: {shard: []}
)");
  EXPECT_TRUE(HasOnlyError(r, 5, 21, {"matrix key 'shard'", "has no values"}));
}

// Given a map inside a matrix list, should point at that item.
TEST(SpecErrorTest, MatrixNonScalarValue) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    matrix:
      shard: [1, {two: 2}, 3]
)");
  EXPECT_TRUE(HasOnlyError(
      r, 6, 18, {"matrix key 'shard'", "item 2", "single value", "got a map"}));
}

// Given a matrix key that is not a list, should say so.
TEST(SpecErrorTest, MatrixValueNotAList) {
  const LoadResult r = Load(R"(
version: 1
tasks: {a: {run: x, matrix: {shard: 3}}}
)");
  EXPECT_TRUE(
      HasOnlyError(r, 2, 37, {"matrix key 'shard'", "must be a list", "got '3'"}));
}

// Given the same value twice in a matrix list, should report the second
// (the two instances would have the same name).
TEST(SpecErrorTest, MatrixDuplicateValue) {
  const LoadResult r = Load(R"(
version: 1
tasks:
  a:
    run: x
    matrix:
      shard: [1, 2,
              1]
)");
  EXPECT_TRUE(HasOnlyError(
      r, 7, 15, {"duplicate value '1'", "matrix key 'shard'", "first at line 6"}));
}

// Given matrices that expand past the cap, should give the count and the
// cap, at the biggest matrix, before expanding anything.
TEST(SpecErrorTest, MatrixOverInstanceCap) {
  LoadOptions options;
  options.max_instances = 100;
  const LoadResult r = Load(R"(
version: 1
tasks:
  small: {run: x, matrix: {i: [1, 2]}}
  big:
    run: x
    matrix: {a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], b: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
)",
                            options);
  EXPECT_TRUE(
      HasOnlyError(r, 6, 5, {"102 task instances", "cap of 100", "'big'", "100)"}));
}

// Given a matrix whose product overflows 64 bits, should refuse it with
// the default cap instead of wrapping around.
TEST(SpecErrorTest, MatrixProductOverflowIsOverCap) {
  std::string list = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]";
  std::string yaml = "version: 1\ntasks:\n  t:\n    run: x\n    matrix: {";
  for (int k = 0; k < 17; ++k)
    yaml += (k ? ", k" : "k") + std::to_string(k) + ": " + list;
  yaml += "}\n";
  const LoadResult r = Load(yaml);
  EXPECT_TRUE(HasOnlyError(r, 5, 5,
                           {"more than 18,446,744,073,709,551,615", "cap of 1,000,000"}));
}

// Given two matrix tasks where one needs the other, should count every
// instance-to-instance edge against the edge cap.
TEST(SpecErrorTest, MatrixOverEdgeCap) {
  LoadOptions options;
  options.max_edges = 99;
  const LoadResult r = Load(R"(
version: 1
tasks:
  a: {run: x, matrix: {i: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}
  b: {run: x, matrix: {j: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}, needs: a}
)",
                            options);
  EXPECT_TRUE(HasOnlyError(r, 4, 67, {"100 dependencies", "cap of 99", "task 'b'"}));
}

}  // namespace
}  // namespace drover::spec
