#include "backends/fork/json_scan.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <system_error>

#include "core/base/utf8.h"

namespace drover {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static_assert(std::endian::native == std::endian::little,
              "the scanners load text in little-endian words");

uint64_t Load8(const char* p) {
  uint64_t chunk;
  std::memcpy(&chunk, p, sizeof chunk);
  return chunk;
}

// How many bytes from `p` (of `n`) need no look of their own inside a JSON
// string: printable ASCII other than '"' and '\\', eight bytes at a time
// (the rest of the text, under eight bytes, is left to the caller). A
// byte's high bit is set in `stop` when it is below 0x20 (the subtraction
// wraps), '"' or '\\' (its XOR with them is 0, which the subtraction of 1
// wraps) or 0x80 and above; for the other bytes every term stays under
// 0x80. Only a stop byte passes a borrow on, to the bytes after it, so the
// first set bit is the first byte to look at.
size_t PlainRun(const char* p, size_t n) {
  constexpr uint64_t kOnes = 0x0101010101010101;
  size_t done = 0;
  for (; n - done >= 8; done += 8) {
    const uint64_t x = Load8(p + done);
    const uint64_t stop = ((x - kOnes * 0x20) | ((x ^ (kOnes * '"')) - kOnes) |
                           ((x ^ (kOnes * '\\')) - kOnes) | x) &
                          0x8080808080808080;
    if (stop != 0) return done + (std::countr_zero(stop) >> 3);
  }
  return done;
}

// One pass over a JSON text, with an explicit stack instead of recursion
// (a hostile reply cannot overflow ours).
class Validator {
 public:
  explicit Validator(std::string_view text) : s_(text.data()), n_(text.size()) {}

  Status Run() {
    Next next = Next::kValue;
    SkipSpace();
    while (true) {
      switch (next) {
        case Next::kValue:
          if (!Value(&next)) return Failure();
          break;
        case Next::kKey:
          if (i_ >= n_ || s_[i_] != '"') return Fail("expected a string key");
          if (!String()) return Failure();
          SkipSpace();
          if (i_ >= n_ || s_[i_] != ':') return Fail("expected ':'");
          ++i_;
          SkipSpace();
          next = Next::kValue;
          break;
        case Next::kAfter: {
          SkipSpace();
          if (stack_.empty()) {
            if (i_ != n_) return Fail("unexpected text after the value");
            return Status::Ok();
          }
          if (i_ >= n_) return Fail("text ends inside an array or object");
          const char open = stack_.back();
          const char c = s_[i_];
          if (c == ',') {
            ++i_;
            SkipSpace();
            next = open == '{' ? Next::kKey : Next::kValue;
          } else if (c == (open == '{' ? '}' : ']')) {
            ++i_;
            stack_.pop_back();
          } else {
            return Fail(open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
          }
          break;
        }
      }
    }
  }

 private:
  enum class Next { kValue, kKey, kAfter };

  // Parses the value at i_ (whitespace skipped). Sets *next to what follows:
  // a key (an object was opened), another value (an array was opened) or
  // the continuation after a complete value.
  bool Value(Next* next) {
    if (i_ >= n_) return SetError("text ends where a value should start");
    const char c = s_[i_];
    switch (c) {
      case '{':
      case '[':
        if (stack_.size() >= kMaxJsonDepth) {
          return SetError("nesting deeper than " + std::to_string(kMaxJsonDepth) +
                          " levels");
        }
        ++i_;
        SkipSpace();
        if (i_ < n_ && s_[i_] == (c == '{' ? '}' : ']')) {
          ++i_;
          *next = Next::kAfter;
          return true;
        }
        stack_.push_back(c);
        *next = c == '{' ? Next::kKey : Next::kValue;
        return true;
      case '"':
        *next = Next::kAfter;
        return String();
      case 't':
        *next = Next::kAfter;
        return Literal("true");
      case 'f':
        *next = Next::kAfter;
        return Literal("false");
      case 'n':
        *next = Next::kAfter;
        return Literal("null");
      default:
        *next = Next::kAfter;
        if (c == '-' || IsDigit(c)) return Number();
        return SetError("unexpected character");
    }
  }

  void SkipSpace() {
    while (i_ < n_ && IsSpace(s_[i_])) ++i_;
  }

  bool Literal(std::string_view word) {
    if (n_ - i_ < word.size() || std::memcmp(s_ + i_, word.data(), word.size()) != 0) {
      return SetError("unexpected character");
    }
    i_ += word.size();
    return true;
  }

  bool Digits() {
    if (i_ >= n_ || !IsDigit(s_[i_])) return SetError("malformed number");
    while (i_ < n_ && IsDigit(s_[i_])) ++i_;
    return true;
  }

  bool Number() {
    const size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (i_ < n_ && s_[i_] == '0') {
      ++i_;
    } else if (!Digits()) {
      return false;
    }
    bool exponent = false;
    if (i_ < n_ && s_[i_] == '.') {
      ++i_;
      if (!Digits()) return false;
    }
    if (i_ < n_ && (s_[i_] == 'e' || s_[i_] == 'E')) {
      exponent = true;
      ++i_;
      if (i_ < n_ && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!Digits()) return false;
    }
    // nlohmann::json refuses a number beyond the range of a double ("number
    // overflow"), so this does too: only an exponent or more than 308
    // digits can get there, so the common number costs nothing more.
    if (exponent || i_ - start > 308) {
      const std::string text(s_ + start, i_ - start);
      if (std::isinf(std::strtod(text.c_str(), nullptr))) {
        i_ = start;
        return SetError("number out of the range of a double");
      }
    }
    return true;
  }

  // Four hex digits at s_[at..at+4), or -1.
  int Hex4(size_t at) const {
    if (at > n_ || n_ - at < 4) return -1;
    int v = 0;
    for (size_t k = 0; k < 4; ++k) {
      int h = HexValue(s_[at + k]);
      if (h < 0) return -1;
      v = v << 4 | h;
    }
    return v;
  }

  bool Escape() {
    if (i_ + 1 >= n_) return SetError("text ends inside a string");
    const char e = s_[i_ + 1];
    if (e != '\0' && std::strchr("\"\\/bfnrt", e) != nullptr) {
      i_ += 2;
      return true;
    }
    if (e != 'u') return SetError("bad escape in a string");
    const int unit = Hex4(i_ + 2);
    if (unit < 0) return SetError("bad \\u escape in a string");
    i_ += 6;
    if (unit >= 0xDC00 && unit <= 0xDFFF) return SetError("lone UTF-16 surrogate escape");
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      if (n_ - i_ < 6 || s_[i_] != '\\' || s_[i_ + 1] != 'u') {
        return SetError("lone UTF-16 surrogate escape");
      }
      const int low = Hex4(i_ + 2);
      if (low < 0xDC00 || low > 0xDFFF) return SetError("lone UTF-16 surrogate escape");
      i_ += 6;
    }
    return true;
  }

  // One UTF-8 sequence of 2 to 4 bytes at i_ (RFC 3629: no overlongs, no
  // surrogates, nothing past U+10FFFF).
  bool Utf8() {
    const size_t len = Utf8SequenceLength(std::string_view(s_, n_), i_);
    if (len == 0) return SetError("invalid UTF-8");
    i_ += len;
    return true;
  }

  bool String() {
    ++i_;  // the opening quote
    while (i_ < n_) {
      i_ += PlainRun(s_ + i_, n_ - i_);
      if (i_ >= n_) break;
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c == '\\') {
        if (!Escape()) return false;
      } else if (c < 0x20) {
        return SetError("control character in a string");
      } else if (c < 0x80) {
        ++i_;
      } else if (!Utf8()) {
        return false;
      }
    }
    return SetError("text ends inside a string");
  }

  bool SetError(std::string what) {
    error_ = std::move(what);
    return false;
  }
  Status Fail(std::string what) {
    SetError(std::move(what));
    return Failure();
  }
  Status Failure() const {
    std::string where = i_ < n_ ? " at byte " + std::to_string(i_) : " at the end";
    return InvalidArgument(error_ + where);
  }

  const char* s_;
  size_t n_;
  size_t i_ = 0;
  // '{' or '[' per open container: a string, whose first 15 need no heap.
  std::string stack_;
  std::string error_;
};

}  // namespace

Status ValidateJson(std::string_view text) {
  if (text.empty()) return InvalidArgument("empty text");
  return Validator(text).Run();
}

namespace {

// ---- Integer arrays, eight bytes at a time ----
//
// A JSON integer's digits are read eight at a time: one load, one test of
// which bytes are digits, a few multiplications for their value (the
// technique of fast_float's parse_eight_digits, written here). The last 24
// bytes of the text, too few for the loads, are read a byte at a time.

// How many of the bytes of `chunk`, from its first in memory, are ASCII
// digits in a row (0 to 8). A byte's high bit is set in `bad` when it is
// not a digit: below '0' the subtraction wraps, from ':' to 0xB9 the
// addition reaches 0x80, above that the subtraction leaves it set. Only
// such a byte passes a borrow or a carry on, to the bytes after it, so the
// first bad byte is exact.
int DigitRun(uint64_t chunk) {
  const uint64_t bad =
      ((chunk + 0x4646464646464646) | (chunk - 0x3030303030303030)) & 0x8080808080808080;
  return bad == 0 ? 8 : std::countr_zero(bad) >> 3;
}

// The value of the eight ASCII digits of `chunk`, its first byte the most
// significant: pairs of digits, then the four pairs in two multiplications.
uint64_t EightDigits(uint64_t chunk) {
  chunk -= 0x3030303030303030;
  chunk = chunk * 10 + (chunk >> 8);  // each pair's value, in its first byte
  constexpr uint64_t kPairs = 0x000000FF000000FF;
  return ((chunk & kPairs) * (100 + (uint64_t{1000000} << 32)) +
          ((chunk >> 16) & kPairs) * (1 + (uint64_t{10000} << 32))) >>
         32;
}

// The value of the first `n` (1 to 7) digits of `chunk`: moved to its end,
// with '0's before them.
uint64_t LeadingDigits(uint64_t chunk, int n) {
  return EightDigits(chunk << (8 * (8 - n)) | (0x3030303030303030 >> (8 * n)));
}

constexpr uint64_t kPow10[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

// Reads the JSON integer at `p` (p < end) into `*value`. Returns the byte
// after it, or null when there is none that fits int64: no digit, a
// leading zero, more than 19 digits, or out of range. A fraction or an
// exponent after it is the caller's to refuse.
const char* ReadInt64(const char* p, const char* end, int64_t* value) {
  const bool negative = *p == '-';
  if (negative) ++p;
  uint64_t magnitude = 0;
  int digits = 0;
  if (end - p >= 24) {  // room for 19 digits and more
    uint64_t chunk = Load8(p);
    int run = DigitRun(chunk);
    if (run == 0) return nullptr;
    if (run < 8) {
      magnitude = LeadingDigits(chunk, run);
      digits = run;
    } else {
      magnitude = EightDigits(chunk);
      chunk = Load8(p + 8);
      run = DigitRun(chunk);
      if (run == 8) {
        magnitude = magnitude * 100000000 + EightDigits(chunk);
        run = DigitRun(Load8(p + 16));
        if (run > 3) return nullptr;  // over 19 digits
        for (int i = 0; i < run; ++i) magnitude = magnitude * 10 + (p[16 + i] - '0');
        digits = 16 + run;
      } else if (run == 1) {  // nine digits: the most common large number
        magnitude = magnitude * 10 + (p[8] - '0');
        digits = 9;
      } else {
        if (run > 0) magnitude = magnitude * kPow10[run] + LeadingDigits(chunk, run);
        digits = 8 + run;
      }
    }
  } else {
    for (; digits < end - p && IsDigit(p[digits]); ++digits) {
      if (digits == 19) return nullptr;
      magnitude = magnitude * 10 + static_cast<uint64_t>(p[digits] - '0');
    }
    if (digits == 0) return nullptr;
  }
  if (digits > 1 && *p == '0') return nullptr;  // JSON has no leading zeros
  // 19 digits stay below 2^64: the range is checked once, here.
  constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
  if (magnitude > kMax + (negative ? 1 : 0)) return nullptr;
  // Taken modulo 2^64, so that 2^63 becomes the smallest int64.
  *value = static_cast<int64_t>(negative ? 0 - magnitude : magnitude);
  return p + digits;
}

}  // namespace

std::optional<IntArray> ReadIntArray(std::string_view text) {
  const char* p = text.data();
  const char* const end = p + text.size();
  auto skip_space = [&] {
    while (p < end && IsSpace(*p)) ++p;
  };
  skip_space();
  if (p == end || *p != '[') return std::nullopt;
  ++p;
  skip_space();
  IntArray out;
  if (p < end && *p == ']') {
    ++p;
  } else {
    // Room for numbers of about 7 digits and a comma.
    out.numbers.reserve(text.size() / 8 + 16);
    int64_t min = std::numeric_limits<int64_t>::max();
    int64_t max = std::numeric_limits<int64_t>::min();
    for (;;) {
      if (p == end) return std::nullopt;
      int64_t value;
      p = ReadInt64(p, end, &value);
      if (p == nullptr) return std::nullopt;
      out.numbers.push_back(value);
      min = std::min(min, value);
      max = std::max(max, value);
      skip_space();
      if (p == end) return std::nullopt;
      if (*p == ',') {
        ++p;
        skip_space();
        continue;
      }
      if (*p != ']') return std::nullopt;  // a fraction, an exponent, anything else
      ++p;
      break;
    }
    out.min = min;
    out.max = max;
  }
  skip_space();
  if (p != end) return std::nullopt;
  return out;
}

std::optional<std::vector<int64_t>> ParseIntArray(std::string_view text) {
  std::optional<IntArray> read = ReadIntArray(text);
  if (!read) return std::nullopt;
  return std::move(read->numbers);
}

void AppendIntArray(const std::vector<int64_t>& numbers, std::string* out) {
  AppendIntArray(numbers, out, 0, {});
}

void AppendIntArray(const std::vector<int64_t>& numbers, std::string* out, size_t part,
                    const std::function<void(std::string*)>& drain) {
  // Written a block at a time into a buffer on the stack, then appended:
  // a std::string append per number (a capacity check and a call each)
  // cost a third of the time of a million numbers (docs/benchmarks.md,
  // "ipc").
  constexpr size_t kBlock = 1024;
  constexpr size_t kMaxDigits = 20;  // "-9223372036854775808"
  char buffer[kBlock * (kMaxDigits + 1)];
  // Room for the whole array (numbers below 10^10 and their commas), or
  // for a part and one more block when it goes out in parts.
  const size_t whole = numbers.size() * 12 + 2;
  out->reserve(out->size() + (drain ? std::min(whole, part + sizeof buffer) : whole));
  out->push_back('[');
  for (size_t k = 0; k < numbers.size();) {
    char* p = buffer;
    const size_t end = std::min(numbers.size(), k + kBlock);
    for (; k < end; ++k) {
      if (k > 0) *p++ = ',';
      // kMaxDigits bytes hold any int64: to_chars cannot fail here.
      p = std::to_chars(p, p + kMaxDigits, numbers[k]).ptr;
    }
    out->append(buffer, static_cast<size_t>(p - buffer));
    if (drain && out->size() >= part) drain(out);
  }
  out->push_back(']');
}

}  // namespace drover
