#include "core/base/outputs.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/base/utf8.h"

namespace drover {

bool ValidOutputKey(std::string_view key) {
  if (key.empty() || key.size() > 128 || key.front() == '-') return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

size_t OutputsSize(const Outputs& outputs) {
  size_t size = 0;
  for (const auto& [k, v] : outputs) size += k.size() + v.size();
  return size;
}

std::string CheckOutputCaps(const Outputs& outputs) {
  if (outputs.size() > kMaxOutputKeys) {
    return std::to_string(outputs.size()) + " outputs, more than the cap of " +
           std::to_string(kMaxOutputKeys);
  }
  const size_t size = OutputsSize(outputs);
  if (size > kMaxOutputBytes) {
    return "outputs of " + std::to_string(size) + " bytes, more than the cap of " +
           std::to_string(kMaxOutputBytes) + " bytes";
  }
  return std::string();
}

bool AppendUtf8JsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = Utf8SequenceLength(s, i);
      if (len == 0) return false;
      out->append(s.data() + i, len);
      i += len;
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out->append("\\\"");
        continue;
      case '\\':
        out->append("\\\\");
        continue;
      case '\b':
        out->append("\\b");
        continue;
      case '\f':
        out->append("\\f");
        continue;
      case '\n':
        out->append("\\n");
        continue;
      case '\r':
        out->append("\\r");
        continue;
      case '\t':
        out->append("\\t");
        continue;
      default:
        break;
    }
    if (c < 0x20) {
      const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out->append(esc, sizeof esc);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
  return true;
}

std::string OutputsToJson(const Outputs& outputs) {
  if (outputs.empty()) return std::string();
  // Written directly: a result's outputs are encoded on every commit, and
  // building a nlohmann::json object for them cost 3% of the coordinator's
  // thread (docs/benchmarks.md, session 17). The library still writes the
  // rare object with invalid UTF-8, so that its replacement rule holds.
  std::string out;
  out.reserve(2 + OutputsSize(outputs) + 6 * outputs.size());
  out.push_back('{');
  auto write = [&] {
    for (const auto& [k, v] : outputs) {
      if (out.size() > 1) out.push_back(',');
      if (!AppendUtf8JsonString(&out, k)) return false;
      out.push_back(':');
      if (!AppendUtf8JsonString(&out, v)) return false;
    }
    out.push_back('}');
    return true;
  };
  if (write()) return out;
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : outputs) j[k] = v;
  // Invalid UTF-8 is replaced rather than thrown on: a value is the task's
  // bytes, and one bad byte must not lose the rest.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<Outputs> OutputsFromJson(std::string_view json) {
  Outputs out;
  if (json.empty()) return out;
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  for (auto& [k, v] : j.items()) {
    if (!v.is_string()) return std::nullopt;
    out.emplace(k, v.get<std::string>());
  }
  return out;
}

std::string OutputJson(std::string_view value) {
  nlohmann::json j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && !j.is_string()) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return nlohmann::json(std::string(value))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace drover
