#include "tools/bench/baselines/hand_int_array.h"

#include <algorithm>
#include <charconv>
#include <system_error>

namespace drover::bench {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<std::vector<int64_t>> HandParseIntArray(std::string_view text) {
  const char* s = text.data();
  const size_t n = text.size();
  size_t i = 0;
  auto skip = [&] {
    while (i < n && IsSpace(s[i])) ++i;
  };
  skip();
  if (i >= n || s[i] != '[') return std::nullopt;
  ++i;
  std::vector<int64_t> numbers;
  // One pass to size the vector exactly: cheaper than regrowing it.
  numbers.reserve(static_cast<size_t>(std::count(s + i, s + n, ',')) + 1);
  skip();
  if (i < n && s[i] == ']') {
    ++i;
  } else {
    while (true) {
      skip();
      const size_t start = i;
      if (i < n && s[i] == '-') ++i;
      if (i >= n || !IsDigit(s[i])) return std::nullopt;
      if (s[i] == '0' && i + 1 < n && IsDigit(s[i + 1])) return std::nullopt;
      while (i < n && IsDigit(s[i])) ++i;
      if (i < n && (s[i] == '.' || s[i] == 'e' || s[i] == 'E')) return std::nullopt;
      int64_t value;
      auto [end, ec] = std::from_chars(s + start, s + i, value);
      if (ec != std::errc() || end != s + i) return std::nullopt;  // out of range
      numbers.push_back(value);
      skip();
      if (i >= n) return std::nullopt;
      if (s[i] == ',') {
        ++i;
        continue;
      }
      if (s[i] != ']') return std::nullopt;
      ++i;
      break;
    }
  }
  skip();
  if (i != n) return std::nullopt;
  return numbers;
}

}  // namespace drover::bench
