#include "core/store/log_path.h"

#include <cstdint>

namespace drover::store {
namespace {

bool IsSafe(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '=' || c == ',' || c == '[' || c == ']' || c == '-';
}

constexpr char kHex[] = "0123456789ABCDEF";

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::string EncodePathComponent(std::string_view name) {
  if (name.empty()) return "%";
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (IsSafe(c) && !(i == 0 && c == '.')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (out.size() <= kMaxComponent) return out;

  // Cut before kMaxComponent - 17 without splitting a %XX triple.
  size_t cut = kMaxComponent - 17;
  if (cut >= 1 && out[cut - 1] == '%') {
    cut -= 1;
  } else if (cut >= 2 && out[cut - 2] == '%') {
    cut -= 2;
  }
  out.resize(cut);
  out.push_back('~');
  uint64_t h = Fnv1a(name);
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(h >> shift) & 0xf]);
  return out;
}

}  // namespace drover::store
