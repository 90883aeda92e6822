#include "core/spec/text.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "core/base/utf8.h"

namespace drover::spec::internal {

size_t FindInvalidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t len = Utf8SequenceLength(text, i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

size_t FindControlCharacter(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) return i;
  }
  return std::string_view::npos;
}

TextIndex::TextIndex(std::string_view text) : text_(text) {
  line_starts_.push_back(0);
  block_continuations_.reserve(text.size() / kBlock + 1);
  size_t continuations = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i % kBlock == 0) block_continuations_.push_back(continuations);
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) == 0x80) ++continuations;
    if (c == '\n') line_starts_.push_back(i + 1);
  }
  ascii_ = continuations == 0;
}

size_t TextIndex::ContinuationsBefore(size_t offset) const {
  if (block_continuations_.empty()) return 0;  // an empty text
  // offset == text.size() may fall one block past the last one recorded.
  const size_t block = std::min(offset / kBlock, block_continuations_.size() - 1);
  size_t count = block_continuations_[block];
  for (size_t i = block * kBlock; i < offset; ++i) {
    if ((static_cast<unsigned char>(text_[i]) & 0xC0) == 0x80) ++count;
  }
  return count;
}

int TextIndex::Line(size_t offset) const {
  offset = std::min(offset, text_.size());
  const auto next = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  return static_cast<int>(next - line_starts_.begin());
}

int TextIndex::Column(size_t offset) const {
  offset = std::min(offset, text_.size());
  const size_t start = line_starts_[static_cast<size_t>(Line(offset)) - 1];
  if (ascii_) return static_cast<int>(offset - start) + 1;
  const size_t chars =
      (offset - start) - (ContinuationsBefore(offset) - ContinuationsBefore(start));
  return static_cast<int>(chars) + 1;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  // Three rolling rows: the swap case looks two rows back.
  std::vector<size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
    }
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string DidYouMean(std::string_view word,
                       const std::vector<std::string_view>& candidates) {
  // A third of the word's length, at least one edit, and never as many
  // edits as the word has characters ("c" is not a typo of "a").
  const size_t limit = std::max<size_t>(1, word.size() / 3);
  size_t best = limit + 1;
  std::string_view best_name;
  for (std::string_view candidate : candidates) {
    const size_t longer = std::max(candidate.size(), word.size());
    const size_t shorter = std::min(candidate.size(), word.size());
    if (longer - shorter > limit) continue;  // cheap reject
    const size_t d = EditDistance(word, candidate);
    if (d < best && d < word.size()) {
      best = d;
      best_name = candidate;
    }
  }
  if (best > limit) return "";
  return " (did you mean '" + std::string(best_name) + "'?)";
}

std::string WithCommas(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string TaskRef(std::string_view name) { return "task " + Quoted(name); }

std::string Quoted(std::string_view text) {
  constexpr size_t kMaxChars = 80;
  std::string out = "'";
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80 && chars++ == kMaxChars) {
      out += "...";
      break;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out += "'";
  return out;
}

bool HasControlCharacter(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) return true;
    // U+0080..U+009F are 0xC2 0x80..0x9F in UTF-8.
    if (c == 0xC2 && i + 1 < text.size() &&
        static_cast<unsigned char>(text[i + 1]) < 0xA0) {
      return true;
    }
  }
  return false;
}

bool IsValidName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
  });
}

std::optional<int64_t> ParseInt(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

}  // namespace drover::spec::internal
