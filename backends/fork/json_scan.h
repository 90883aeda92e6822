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
// each byte (plain string bytes eight at a time) and no allocation for the
// first 15 levels of nesting, 1.0x to 1.7x simdjson's DOM parser on the
// million numbers and 1.6x to 1.9x on a small message, slower on a
// mid-sized object; it accepts what JSON.parse accepts and names the byte
// at fault.
// Integer arrays are read eight digits at a time, with their smallest and
// largest found on the way: faster than simdjson's On-Demand parser, which
// read them before (docs/benchmarks.md, "bench libs"). AppendIntArray is
// std::to_chars (simdjson 3.0 writes no JSON).
#ifndef DROVER_BACKENDS_FORK_JSON_SCAN_H_
#define DROVER_BACKENDS_FORK_JSON_SCAN_H_

#include <cstdint>
#include <functional>
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

// A JSON array of integers, read: its numbers in order, and the smallest
// and the largest of them (both 0 when there are none), found on the way
// so that a sort need not look for them.
struct IntArray {
  std::vector<int64_t> numbers;
  int64_t min = 0;
  int64_t max = 0;
};

// `text` as a list of integers when it is exactly a JSON array of JSON
// integers (no fraction or exponent) that each fit in int64, with JSON
// whitespace around its parts; nothing otherwise (including invalid JSON,
// a NUL byte or a byte order mark), so the caller falls back to a full
// parser, which says what is wrong. Reads only `text`, in place.
std::optional<IntArray> ReadIntArray(std::string_view text);

// ReadIntArray(text)'s numbers.
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
