#include "core/spec/json_template.h"

#include <algorithm>

namespace drover::spec::internal {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool OneOf(std::string_view text, std::initializer_list<std::string_view> words) {
  return std::find(words.begin(), words.end(), text) != words.end();
}

// [0-9a-fA-F] or [0-7] digits after a 0x / 0o prefix, as a decimal number.
// Nullopt when `digits` is empty, has another character, or overflows 64
// bits; `*is_number` says whether the text had the number's form at all.
std::optional<std::string> RadixToDecimal(std::string_view digits, unsigned radix,
                                          bool* is_number) {
  *is_number = false;
  if (digits.empty()) return std::nullopt;
  uint64_t value = 0;
  bool overflow = false;
  for (char c : digits) {
    unsigned d = 0;
    if (IsDigit(c)) {
      d = static_cast<unsigned>(c - '0');
    } else if (radix == 16 && c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else if (radix == 16 && c >= 'A' && c <= 'F') {
      d = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    if (d >= radix) return std::nullopt;
    if (__builtin_mul_overflow(value, radix, &value) ||
        __builtin_add_overflow(value, d, &value)) {
      overflow = true;
    }
  }
  *is_number = true;
  if (overflow) return std::nullopt;
  return std::to_string(value);
}

// YAML 1.2 core: [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE][-+]?[0-9]+ )?
// (which covers the decimal integers too), rewritten in JSON's grammar:
// -? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][-+]?[0-9]+)?. The digits are kept
// as written, never rounded through a double.
std::optional<std::string> DecimalToJson(std::string_view s) {
  size_t i = 0;
  std::string out;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
    if (s[i] == '-') out += '-';
    ++i;
  }
  const size_t int_start = i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  std::string_view whole = s.substr(int_start, i - int_start);
  std::string_view fraction;
  bool has_dot = false;
  if (i < s.size() && s[i] == '.') {
    has_dot = true;
    const size_t start = ++i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    fraction = s.substr(start, i - start);
  }
  if (whole.empty() && (!has_dot || fraction.empty())) return std::nullopt;
  std::string_view exponent;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    const size_t start = i++;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    const size_t digits = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == digits) return std::nullopt;
    exponent = s.substr(start, i - start);
  }
  if (i != s.size()) return std::nullopt;
  while (whole.size() > 1 && whole.front() == '0') whole.remove_prefix(1);
  out += whole.empty() ? "0" : std::string(whole);
  if (!fraction.empty()) {
    out += '.';
    out += fraction;
  }
  out += exponent;
  return out;
}

}  // namespace

std::optional<std::string> PlainScalarJson(std::string_view text) {
  if (OneOf(text, {"", "~", "null", "Null", "NULL"})) return "null";
  if (OneOf(text, {"true", "True", "TRUE"})) return "true";
  if (OneOf(text, {"false", "False", "FALSE"})) return "false";
  if (OneOf(text, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf",
                   "-.INF", ".nan", ".NaN", ".NAN"})) {
    return std::nullopt;  // JSON has no infinity and no NaN
  }
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'o')) {
    bool is_number = false;
    std::optional<std::string> n =
        RadixToDecimal(text.substr(2), text[1] == 'x' ? 16 : 8, &is_number);
    if (n || is_number) return n;  // a number, or one too large for JSON here
  } else if (std::optional<std::string> n = DecimalToJson(text)) {
    return n;
  }
  std::string out;
  AppendJsonString(text, &out);
  return out;
}

void AppendJsonEscaped(std::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\r':
        *out += "\\r";
        break;
      default:
        if (u < 0x20) {
          *out += "\\u00";
          out->push_back(kHex[u >> 4]);
          out->push_back(kHex[u & 0xF]);
        } else {
          out->push_back(c);
        }
    }
  }
}

void AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  AppendJsonEscaped(text, out);
  out->push_back('"');
}

JsonTemplate JsonTemplate::Literal(std::string json) {
  JsonTemplate t;
  t.parts_.front() = std::move(json);
  return t;
}

void JsonTemplate::AddHole(uint32_t key, Hole kind) {
  closed_size_ += parts_.back().size();
  holes_.push_back(HoleRef{key, kind});
  parts_.emplace_back();
}

std::string JsonTemplate::Render(const std::vector<const std::string*>& values,
                                 const std::vector<const std::string*>& json) const {
  std::string out;
  out.reserve(literal_size() + 16 * holes_.size());
  for (size_t k = 0; k < holes_.size(); ++k) {
    out += parts_[k];
    const HoleRef& hole = holes_[k];
    if (hole.kind == Hole::kWhole) {
      out += *json[hole.key];
    } else {
      AppendJsonEscaped(*values[hole.key], &out);
    }
  }
  out += parts_.back();
  return out;
}

}  // namespace drover::spec::internal
