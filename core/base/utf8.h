// UTF-8 validation shared by the spec loader (files must be UTF-8) and the
// fork backend's reply scanner (replies are JSON, hence UTF-8).
#ifndef DROVER_CORE_BASE_UTF8_H_
#define DROVER_CORE_BASE_UTF8_H_

#include <cstddef>
#include <string_view>

namespace drover {

// The length (1 to 4) of the well-formed UTF-8 sequence starting at s[i],
// or 0 when the bytes there are not one (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF, no truncated sequence).
// Precondition: i < s.size().
inline size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t len = 0;
  // The valid range of the second byte depends on the first (table 3-7 of
  // the Unicode standard).
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() - i < len || b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
  }
  return len;
}

}  // namespace drover

#endif  // DROVER_CORE_BASE_UTF8_H_
