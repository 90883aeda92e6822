// Fuzz target: the fork backend's JSON scanners (backends/fork/json_scan.h),
// which check every reply of a process pool (hostile bytes from a child)
// before it becomes a task's result.
//
// Besides not crashing, it holds them to their header against
// nlohmann::json, the full parser they stand in for:
// - ValidateJson accepts exactly what nlohmann::json accepts, except that
//   it refuses nesting deeper than kMaxJsonDepth and text after a NUL byte;
// - ReadIntArray (and ParseIntArray) returns numbers only for a valid
//   array of integers, the same ones nlohmann::json reads, with their
//   smallest and largest;
// - AppendIntArray writes what nlohmann::json dumps.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "backends/fork/json_scan.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// The deepest nesting of arrays and objects in `text`, outside strings.
size_t Depth(std::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using drover::kMaxJsonDepth;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const drover::Status valid = drover::ValidateJson(text);
  const bool accepted = nlohmann::json::accept(text.begin(), text.end());
  if (valid.ok()) FUZZ_CHECK(accepted);
  // nlohmann::json takes a NUL byte outside a string for the end of the
  // input (it accepts "\"\"\0garbage"); ValidateJson rightly refuses it.
  const bool has_nul = text.find('\0') != std::string_view::npos;
  if (accepted && !has_nul && Depth(text) <= kMaxJsonDepth) FUZZ_CHECK(valid.ok());
  if (!valid.ok()) FUZZ_CHECK(!valid.message().empty());

  const auto read = drover::ReadIntArray(text);
  FUZZ_CHECK(read.has_value() == drover::ParseIntArray(text).has_value());
  if (read.has_value()) {
    const std::vector<int64_t>* numbers = &read->numbers;
    FUZZ_CHECK(valid.ok());
    const nlohmann::json parsed = nlohmann::json::parse(text.begin(), text.end());
    FUZZ_CHECK(parsed.is_array() && parsed.size() == numbers->size());
    for (size_t i = 0; i < numbers->size(); ++i) {
      FUZZ_CHECK(parsed[i].is_number_integer());
      FUZZ_CHECK(parsed[i].get<int64_t>() == (*numbers)[i]);
    }
    if (!numbers->empty()) {
      FUZZ_CHECK(read->min == *std::min_element(numbers->begin(), numbers->end()));
      FUZZ_CHECK(read->max == *std::max_element(numbers->begin(), numbers->end()));
    }
    std::string out;
    drover::AppendIntArray(*numbers, &out);
    FUZZ_CHECK(out == nlohmann::json(*numbers).dump());
  }
  return 0;
}
