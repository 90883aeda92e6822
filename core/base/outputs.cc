#include "core/base/outputs.h"

#include <algorithm>
#include <nlohmann/json.hpp>

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

std::string OutputsToJson(const Outputs& outputs) {
  if (outputs.empty()) return std::string();
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
