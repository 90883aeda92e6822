// Text helpers of the spec loader: UTF-8 checks, positions, "did you mean",
// names and numbers. Internal to core/spec; no yaml-cpp here.
#ifndef DROVER_CORE_SPEC_TEXT_H_
#define DROVER_CORE_SPEC_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace drover::spec::internal {

// The byte offset of the first byte that is not part of well-formed UTF-8
// (stray continuation bytes, truncated sequences, overlong forms, UTF-16
// surrogates, code points above U+10FFFF), or std::string_view::npos.
size_t FindInvalidUtf8(std::string_view text);

// The byte offset of the first control character YAML does not allow in a
// stream (C0 controls other than tab, line feed and carriage return, and
// DEL), or std::string_view::npos. Such a character can only be written
// as an escape in a double-quoted string.
size_t FindControlCharacter(std::string_view text);

// Maps byte offsets of a text to 1-based lines and columns, the column
// counted in characters (UTF-8 lead bytes): what an editor shows. Each
// lookup is O(log lines + 256) whatever the line's length, so that a file
// holding a 100,000-item list on one line is not scanned once per item.
// Keeps a view of `text`, which must outlive it.
class TextIndex {
 public:
  explicit TextIndex(std::string_view text);
  // `offset` may be text.size() (the end of the file).
  int Line(size_t offset) const;
  int Column(size_t offset) const;

 private:
  static constexpr size_t kBlock = 256;
  // Continuation bytes (10xxxxxx) in text[0, offset).
  size_t ContinuationsBefore(size_t offset) const;

  std::string_view text_;
  std::vector<size_t> line_starts_;          // offset of each line's first byte
  std::vector<size_t> block_continuations_;  // ContinuationsBefore(k * kBlock)
  bool ascii_ = true;  // no multi-byte characters: a column is a byte count
};

// Optimal string alignment distance (Levenshtein plus adjacent swaps), so
// that "retires" is one edit away from "retries".
size_t EditDistance(std::string_view a, std::string_view b);

// " (did you mean 'x'?)" for the closest candidate within a small distance
// of `word`, or "" when nothing is close enough.
std::string DidYouMean(std::string_view word,
                       const std::vector<std::string_view>& candidates);

// "1234567" -> "1,234,567".
std::string WithCommas(uint64_t n);

// `text` in single quotes for a message, cut after 80 characters and with
// control characters escaped, so that an error stays one readable line.
std::string Quoted(std::string_view text);

// "task 'NAME'": how an error message names a task.
std::string TaskRef(std::string_view name);

// Whether UTF-8 `text` holds a control character: C0 (line breaks and
// tabs included), DEL, or C1 (U+0080 to U+009F, which terminals may take
// for escapes). Names printed in logs and on terminals must not.
bool HasControlCharacter(std::string_view text);

// [A-Za-z0-9_.-]+: task names and matrix keys.
bool IsValidName(std::string_view name);

// A plain decimal integer ("42", "-7"); nothing else (no "+", "0x", " ").
std::optional<int64_t> ParseInt(std::string_view text);

}  // namespace drover::spec::internal

#endif  // DROVER_CORE_SPEC_TEXT_H_
