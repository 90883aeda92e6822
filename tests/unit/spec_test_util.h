// Helpers shared by the core/spec unit tests (spec_test.cc,
// spec_backends_test.cc).
#ifndef DROVER_TESTS_UNIT_SPEC_TEST_UTIL_H_
#define DROVER_TESTS_UNIT_SPEC_TEST_UTIL_H_

#include <initializer_list>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "core/spec/job_spec.h"

namespace drover::spec::test_util {

// Loads a YAML snippet as "job.yaml"; a leading newline is dropped so that
// line 1 is the first line written after R"(.
inline LoadResult Load(std::string_view yaml, const LoadOptions& options = {}) {
  if (!yaml.empty() && yaml.front() == '\n') yaml.remove_prefix(1);
  return LoadString(yaml, "job.yaml", options);
}

inline std::string Dump(const LoadResult& result) {
  std::string out;
  for (const SpecError& e : result.errors) out += "  " + e.ToString() + "\n";
  return out;
}

// Exactly one error, at line:column, whose message holds every word.
inline ::testing::AssertionResult HasOnlyError(const LoadResult& result, int line, int column,
                                        std::initializer_list<std::string_view> words) {
  if (result.errors.size() != 1) {
    return ::testing::AssertionFailure()
           << "expected 1 error, got " << result.errors.size() << ":\n" << Dump(result);
  }
  if (result.spec.has_value()) return ::testing::AssertionFailure() << "spec set despite an error";
  const SpecError& e = result.errors.front();
  if (e.where.line != line || e.where.column != column) {
    return ::testing::AssertionFailure() << "expected the error at " << line << ":" << column
                                         << ", got " << e.ToString();
  }
  for (std::string_view word : words) {
    if (e.message.find(word) == std::string::npos) {
      return ::testing::AssertionFailure() << "no \"" << word << "\" in: " << e.ToString();
    }
  }
  return ::testing::AssertionSuccess();
}

inline const JobSpec& Spec(const LoadResult& result) {
  EXPECT_TRUE(result.ok()) << Dump(result);
  static const JobSpec kEmpty;
  return result.spec ? *result.spec : kEmpty;
}

}  // namespace drover::spec::test_util

#endif  // DROVER_TESTS_UNIT_SPEC_TEST_UTIL_H_
