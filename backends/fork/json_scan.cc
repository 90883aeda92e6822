#include "backends/fork/json_scan.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
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
  std::vector<char> stack_;  // '{' or '[' per open container
  std::string error_;
};

}  // namespace

Status ValidateJson(std::string_view text) {
  if (text.empty()) return InvalidArgument("empty text");
  return Validator(text).Run();
}

// simdjson's On-Demand parser, kept with a padded copy of the text (the
// parser reads up to SIMDJSON_PADDING bytes past the end of its input).
struct IntArrayReader::State {
  simdjson::ondemand::parser parser;
  std::string padded;
};

IntArrayReader::IntArrayReader() : state_(std::make_unique<State>()) {}
IntArrayReader::~IntArrayReader() = default;
IntArrayReader::IntArrayReader(IntArrayReader&&) noexcept = default;
IntArrayReader& IntArrayReader::operator=(IntArrayReader&&) noexcept = default;

std::optional<std::vector<int64_t>> IntArrayReader::Parse(std::string_view text,
                                                         size_t readable) {
  const char* data = text.data();
  size_t capacity = readable;
  if (readable < text.size() + simdjson::SIMDJSON_PADDING) {
    // No padding after the text: a copy with it (10 MB for a million numbers).
    std::string& padded = state_->padded;
    padded.reserve(text.size() + simdjson::SIMDJSON_PADDING);
    padded.assign(text);
    data = padded.data();
    capacity = padded.capacity();
  }
  simdjson::ondemand::document doc;
  if (state_->parser.iterate(data, text.size(), capacity).get(doc)) return std::nullopt;
  simdjson::ondemand::array array;
  if (doc.get_array().get(array)) return std::nullopt;
  // Room for numbers of about 7 digits and a comma, and no count_elements()
  // pass first: 14.7 against 18.5 ms for 1,000,000 numbers of 9 digits
  // (reserving text.size() / 2 took 20.3 ms: more fresh pages).
  std::vector<int64_t> numbers;
  numbers.reserve(text.size() / 8 + 16);
  for (auto element : array) {
    // get_int64 refuses a fraction, an exponent, a leading zero, a value
    // beyond int64 and anything that is not a number.
    int64_t value;
    if (element.get_int64().get(value)) return std::nullopt;
    numbers.push_back(value);
  }
  // Past the array's end On-Demand has nothing left to read (OUT_OF_BOUNDS);
  // anything else means text follows it.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) return std::nullopt;
  return numbers;
}

std::optional<std::vector<int64_t>> ParseIntArray(std::string_view text) {
  return IntArrayReader().Parse(text);
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
