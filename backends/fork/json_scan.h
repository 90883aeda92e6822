// Fast JSON checks for the fork backend's hot path.
//
// Every reply of a process pool is validated before it becomes a task's
// result, and every message before it is sent (an unmodified Node child
// dies on a line it cannot JSON.parse). A sort of a million numbers moves
// about 10 MB each way, where nlohmann::json's DOM costs hundreds of
// milliseconds.
//
// Each piece was measured against simdjson 3.0 (tools/bench/libs_bench,
// figures in docs/benchmarks.md). ValidateJson is hand-written: one look at
// each byte and no allocation beyond the nesting stack, 1.2x to 1.7x
// simdjson's DOM parser on the million numbers and 1.6x on a small message.
// Integer arrays are read with simdjson's On-Demand parser, 1.4x the
// hand-written reader it replaced. AppendIntArray is std::to_chars
// (simdjson 3.0 writes no JSON).
#ifndef DROVER_BACKENDS_FORK_JSON_SCAN_H_
#define DROVER_BACKENDS_FORK_JSON_SCAN_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"

namespace drover {

// Nesting deeper than this is refused (a reply is data, not a stack test).
inline constexpr size_t kMaxJsonDepth = 1000;

// The body sent for an absent args or message: JSON null.
inline constexpr std::string_view kJsonNull = "null";

// Ok when `text` is exactly one JSON value (RFC 8259) with optional
// surrounding whitespace, in valid UTF-8. What it accepts nlohmann::json
// parses too: a \u escape of a UTF-16 surrogate must be a proper pair,
// and a number must be within the range of a double (1e999 is refused).
// Otherwise kInvalidArgument, e.g. "unexpected 'x' at byte 12", "text
// ends inside a string", "nesting deeper than 1000 levels".
Status ValidateJson(std::string_view text);

// Reads JSON arrays of integers with simdjson's On-Demand parser, keeping
// the parser and a padded copy of the text for the next call: reading a
// million numbers with them kept takes three quarters of the time it takes
// afresh (no page faults). What is kept grows with the largest text read
// (its copy and the parser's index of it; the fork channel caps a message
// at 16 MiB). Not thread-safe: one owner.
class IntArrayReader {
 public:
  IntArrayReader();
  ~IntArrayReader();
  IntArrayReader(IntArrayReader&&) noexcept;
  IntArrayReader& operator=(IntArrayReader&&) noexcept;

  // `text` as a list of integers when it is exactly a JSON array of JSON
  // integers (no fraction or exponent) that each fit in int64; nothing
  // otherwise (including invalid JSON), so the caller falls back to a full
  // parser, which says what is wrong. `readable` is how many bytes from
  // text.data() the caller's buffer holds: with at least 64 past the text
  // (simdjson's padding, which it may read but never uses), the text is
  // parsed where it is; otherwise it is copied first.
  std::optional<std::vector<int64_t>> Parse(std::string_view text, size_t readable = 0);

 private:
  struct State;  // keeps simdjson.h out of this header
  std::unique_ptr<State> state_;
};

// IntArrayReader().Parse(text): the same, with nothing kept.
std::optional<std::vector<int64_t>> ParseIntArray(std::string_view text);

// Appends `numbers` as a compact JSON array ("[1,-2,3]"), byte for byte
// what nlohmann::json(numbers).dump() gives.
void AppendIntArray(const std::vector<int64_t>& numbers, std::string* out);
// The same in parts: `drain(out)` is called each time `out` holds `part`
// bytes or more, and may send what it holds and clear it.
void AppendIntArray(const std::vector<int64_t>& numbers, std::string* out, size_t part,
                    const std::function<void(std::string*)>& drain);

}  // namespace drover

#endif  // DROVER_BACKENDS_FORK_JSON_SCAN_H_
