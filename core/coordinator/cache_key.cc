#include "core/coordinator/cache_key.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/artifacts/sha256.h"

namespace drover::cache {
namespace {

constexpr std::pair<PartKind, std::string_view> kKindNames[] = {
    {PartKind::kDefinition, "definition"},
    {PartKind::kInput, "input"},
    {PartKind::kOutput, "output"},
    {PartKind::kArtifact, "artifact"},
};

std::string_view KindName(PartKind kind) {
  for (const auto& [k, name] : kKindNames) {
    if (k == kind) return name;
  }
  return "definition";
}

std::optional<PartKind> ParseKind(std::string_view name) {
  for (const auto& [k, n] : kKindNames) {
    if (n == name) return k;
  }
  return std::nullopt;
}

// The 8-byte little-endian length, then the bytes: {"ab", "c"} and
// {"a", "bc"} feed different bytes.
void Feed(artifacts::Sha256& h, std::string_view s) {
  char len[8];
  uint64_t n = s.size();
  for (char& c : len) {
    c = static_cast<char>(n & 0xFF);
    n >>= 8;
  }
  h.Update(std::string_view(len, sizeof len));
  h.Update(s);
}

// How a part is named in a sentence.
std::string Describe(const KeyPart& p) {
  switch (p.kind) {
    case PartKind::kDefinition:
      return "definition";
    case PartKind::kInput:
      return "input " + p.name;
    case PartKind::kOutput:
      return "upstream " + p.task + "'s output " + p.name;
    case PartKind::kArtifact:
      return "upstream " + p.task + "'s artifact " + p.name;
  }
  return p.name;
}

bool SameSlot(const KeyPart& a, const KeyPart& b) {
  return a.kind == b.kind && a.task == b.task && a.name == b.name;
}

}  // namespace

CacheKey MakeKey(std::vector<KeyPart> parts) {
  artifacts::Sha256 h;
  Feed(h, "drover-cache/1");
  for (const KeyPart& p : parts) {
    Feed(h, KindName(p.kind));
    Feed(h, p.task);
    Feed(h, p.name);
    Feed(h, p.value);
  }
  return CacheKey{h.Final(), std::move(parts)};
}

KeyPart DefinitionPart(uint64_t fingerprint) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fingerprint));
  return KeyPart{PartKind::kDefinition, "", "", hex};
}

std::string InputParts(const std::vector<std::string>& patterns,
                       const InputHashes& hashes, std::vector<KeyPart>* out) {
  std::map<std::string, std::string> files;  // by path: once, sorted
  for (const std::string& pattern : patterns) {
    auto it = hashes.find(pattern);
    if (it == hashes.end()) {
      return "the client sent no hashes for input '" + pattern +
             "' (drover run and drover submit send them; drover retry cannot)";
    }
    for (const auto& [path, sha] : it->second) files.emplace(path, sha);
  }
  for (auto& [path, sha] : files)
    out->push_back(KeyPart{PartKind::kInput, "", path, sha});
  return "";
}

std::string FirstChange(const std::vector<KeyPart>& before,
                        const std::vector<KeyPart>& now) {
  // In key order: the definition first, then inputs, outputs, artifacts.
  for (const KeyPart& p : now) {
    auto old = std::find_if(before.begin(), before.end(),
                            [&](const KeyPart& b) { return SameSlot(b, p); });
    if (old == before.end()) return Describe(p) + " added";
    if (old->value != p.value) return Describe(p) + " changed";
  }
  for (const KeyPart& b : before) {
    auto now_it = std::find_if(now.begin(), now.end(),
                               [&](const KeyPart& p) { return SameSlot(b, p); });
    if (now_it == now.end()) return Describe(b) + " removed";
  }
  return "";
}

std::string PartsToJson(const std::vector<KeyPart>& parts) {
  nlohmann::json list = nlohmann::json::array();
  for (const KeyPart& p : parts) {
    list.push_back({{"kind", KindName(p.kind)},
                    {"task", p.task},
                    {"name", p.name},
                    {"value", p.value}});
  }
  return list.dump();
}

std::optional<std::vector<KeyPart>> PartsFromJson(std::string_view json) {
  nlohmann::json list = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!list.is_array()) return std::nullopt;
  std::vector<KeyPart> out;
  for (const nlohmann::json& item : list) {
    if (!item.is_object()) return std::nullopt;
    KeyPart p;
    for (const char* field : {"kind", "task", "name", "value"}) {
      auto it = item.find(field);
      if (it == item.end() || !it->is_string()) return std::nullopt;
    }
    std::optional<PartKind> kind = ParseKind(item["kind"].get<std::string>());
    if (!kind) return std::nullopt;
    p.kind = *kind;
    p.task = item["task"].get<std::string>();
    p.name = item["name"].get<std::string>();
    p.value = item["value"].get<std::string>();
    out.push_back(std::move(p));
  }
  return out;
}

std::string InputHashesToJson(const InputHashes& hashes) {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [pattern, files] : hashes) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [path, sha] : files) list.push_back({path, sha});
    object[pattern] = std::move(list);
  }
  return object.dump();
}

std::optional<InputHashes> InputHashesFromJson(std::string_view json) {
  if (json.empty()) return InputHashes();
  nlohmann::json object =
      nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return std::nullopt;
  InputHashes out;
  for (const auto& [pattern, list] : object.items()) {
    if (!list.is_array()) return std::nullopt;
    auto& files = out[pattern];
    for (const nlohmann::json& pair : list) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() ||
          !pair[1].is_string()) {
        return std::nullopt;
      }
      files.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
    }
  }
  return out;
}

}  // namespace drover::cache
