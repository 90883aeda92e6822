// YamlParseDiff: where two parses of one text differ, for the tests of
// ParseYaml's read-ahead (core/spec/yaml_doc.h), which must give the tree
// and offsets of yaml-cpp parsing the text whole. Used by the fuzz target
// fuzz_spec and by yaml_doc_test.
#ifndef DROVER_TESTS_FUZZ_YAML_PARSE_DIFF_H_
#define DROVER_TESTS_FUZZ_YAML_PARSE_DIFF_H_

#include <string>

#include "core/spec/yaml_doc.h"

namespace drover::spec::internal {

// The first difference between the values `a` and `b` (at `path`), or "".
// Looks at `budget` values at most, `depth` levels down: an alias inside
// its own anchor (`&a [*a, *a]`) makes a tree without an end.
inline std::string YamlNodeDiff(YamlDoc::Node a, YamlDoc::Node b, const std::string& path,
                                size_t& budget, int depth = 200) {
  if (budget == 0 || depth == 0) return "";
  --budget;
  if (a.kind() != b.kind()) return path + ": kinds differ";
  if (a.offset() != b.offset()) {
    return path + ": offsets differ (" + std::to_string(a.offset()) + ", " +
           std::to_string(b.offset()) + ")";
  }
  if (a.IsScalar() && (a.Scalar() != b.Scalar() || a.IsPlain() != b.IsPlain())) {
    return path + ": scalars differ ('" + a.Scalar() + "', '" + b.Scalar() + "')";
  }
  if (a.size() != b.size()) return path + ": sizes differ";
  const bool map = a.IsMap();
  for (size_t i = 0; i < (map ? 2 * a.size() : a.size()); ++i) {
    const std::string at = path + "/" + std::to_string(i);
    std::string d =
        map ? (i % 2 == 0
                   ? YamlNodeDiff(a.Key(i / 2), b.Key(i / 2), at, budget, depth - 1)
                   : YamlNodeDiff(a.Value(i / 2), b.Value(i / 2), at, budget, depth - 1))
            : YamlNodeDiff(a.Item(i), b.Item(i), at, budget, depth - 1);
    if (!d.empty()) return d;
  }
  return "";
}

// The first difference between the parses `a` and `b`, or "".
inline std::string YamlParseDiff(const YamlParse& a, const YamlParse& b) {
  if (a.failed != b.failed) return "one failed";
  if (a.error != b.error || a.error_offset != b.error_offset) return "errors differ";
  if (a.doc.has_value() != b.doc.has_value()) return "one has a document";
  if (a.second_document != b.second_document) return "second documents differ";
  if (a.nul_scalar != b.nul_scalar) return "NUL scalars differ";
  size_t budget = 1'000'000;
  return a.doc ? YamlNodeDiff(a.doc->root(), b.doc->root(), "", budget) : "";
}

}  // namespace drover::spec::internal

#endif  // DROVER_TESTS_FUZZ_YAML_PARSE_DIFF_H_
