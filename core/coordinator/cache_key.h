// A task's cache key (docs/spec.md, "Caching"): plain data, no I/O. The
// key is the sha256 of its parts, in this order:
//   definition         the task's fingerprint (core/spec/fingerprint.h)
//   input PATH         the sha256 of each local file its `inputs` match,
//                      as the submitting client hashed it, by path
//   output TASK KEY    the sha256 of each upstream output it refers to
//                      (`${tasks.TASK.outputs.KEY}`), per upstream instance
//   artifact TASK PATH the sha256 of each artifact of its `needs`
// Two attempts with equal keys did the same work on the same data, so a
// success of one stands for the other. The parts are kept with the key so
// that `drover explain` can say which one changed.
#ifndef DROVER_CORE_COORDINATOR_CACHE_KEY_H_
#define DROVER_CORE_COORDINATOR_CACHE_KEY_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace drover::cache {

enum class PartKind : uint8_t { kDefinition, kInput, kOutput, kArtifact };

struct KeyPart {
  PartKind kind = PartKind::kDefinition;
  // The upstream instance of an output or artifact part; "" otherwise.
  std::string task;
  // "" (definition), the input's path, the output's key, the artifact's
  // path.
  std::string name;
  std::string value;  // a digest: 16 hex digits (definition) or 64 (the rest)

  bool operator==(const KeyPart&) const = default;
};

struct CacheKey {
  std::string key;  // 64 lowercase hex digits
  std::vector<KeyPart> parts;
};

// The files the client found for each `inputs` pattern, by pattern: each
// (path, sha256), sorted by path (docs/protocol.md, Submit.inputs).
using InputHashes =
    std::map<std::string, std::vector<std::pair<std::string, std::string>>>;

// The key of `parts` (order matters: it is the order above). Each part is
// fed as its kind, task, name and value, length-prefixed, into one sha256.
CacheKey MakeKey(std::vector<KeyPart> parts);

// The definition part of a task with fingerprint `fingerprint`.
KeyPart DefinitionPart(uint64_t fingerprint);

// The input parts of a task with `patterns` (its `inputs`), from `hashes`:
// every file any pattern matched, once, by path, appended to *out.
// Returns "" on success, else why no key can be made (the first pattern
// the client sent no hashes for).
std::string InputParts(const std::vector<std::string>& patterns,
                       const InputHashes& hashes, std::vector<KeyPart>* out);

// The first difference between an earlier key's parts and this one's, as
// a phrase for `drover explain`: "definition changed", "input src/a.c
// changed", "input src/b.c added", "upstream build's output version
// changed", "upstream build's artifact out/app changed", ...; "" when
// they are equal.
std::string FirstChange(const std::vector<KeyPart>& before,
                        const std::vector<KeyPart>& now);

// Parts as JSON ([{"kind": "input", "task": "", "name": ..., "value": ...},
// ...]) and
// back (nullopt: not such a list).
std::string PartsToJson(const std::vector<KeyPart>& parts);
std::optional<std::vector<KeyPart>> PartsFromJson(std::string_view json);

// InputHashes as JSON ({"pattern": [[path, sha256], ...], ...}) and back.
std::string InputHashesToJson(const InputHashes& hashes);
std::optional<InputHashes> InputHashesFromJson(std::string_view json);

}  // namespace drover::cache

#endif  // DROVER_CORE_COORDINATOR_CACHE_KEY_H_
