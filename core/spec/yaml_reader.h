// YamlReader: walks a parsed YAML document (yaml_doc.h) and fills a
// RawJob, reporting every problem it finds to an ErrorSink and carrying on.
// Internal to core/spec. Not thread-safe; one reader per load.
#ifndef DROVER_CORE_SPEC_YAML_READER_H_
#define DROVER_CORE_SPEC_YAML_READER_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/spec/raw_job.h"
#include "core/spec/text.h"
#include "core/spec/yaml_doc.h"

namespace drover::spec::internal {

// The keys a task shares with `defaults`.
inline constexpr std::string_view kSettingKeys[] = {
    "backend", "env", "cwd", "timeout", "kill_grace", "retries", "retry_backoff",
    "output_limit"};
// Bounds `retries` so that attempt counters cannot overflow.
inline constexpr int kMaxRetries = 1000;

using YNode = YamlDoc::Node;

// "got 'three'", "got a list", "got a map" or "got nothing", for messages.
std::string Got(const YNode& node);
// True for `key:` with nothing after it, `~` and `null`.
inline bool IsEmpty(const YNode& node) { return node.IsNull(); }

// Task keys of the backends that are designed but not built yet (fork:
// pool, message; threads: fn, args; cluster: service, request).
struct PlannedKey {
  std::string_view key;
  std::string_view backend;
};
const PlannedKey* FindPlannedTaskKey(std::string_view key);
std::string PlannedTaskKeyMessage(const PlannedKey& planned, std::string_view context);

class YamlReader {
 public:
  // `text` is the document's source (for lines and columns), `bom` the
  // length of a byte order mark yaml-cpp skipped before counting offsets.
  YamlReader(std::string_view text, size_t bom, ErrorSink* errors)
      : index_(text), bom_(bom), errors_(errors) {}

  // Reads the document's root into `job`. `job->name` is left empty when
  // the file has no `name:`.
  void ReadJob(const YNode& root, RawJob* job);

  // The 1-based line and character column of a byte offset as yaml-cpp
  // counts it (after a byte order mark), or of a node.
  Pos At(uint32_t offset) const;
  Pos At(const YNode& node) const { return At(node.offset()); }

 private:
  struct Entry {
    std::string key;
    Pos key_pos;
    YNode value;
    Pos value_pos;  // the key's position when the value is empty
  };
  enum class MapKind { kKeys, kTasks };

  void Error(Pos where, std::string message) { errors_->Add(where, std::move(message)); }

  // The entries of `map` in file order. yaml-cpp keeps duplicate keys, so
  // they are reported here (at the second one) and only the first is kept.
  // `context` (" in task 'x'", or "") ends the messages' subject.
  std::vector<Entry> Entries(const YNode& map, std::string_view context,
                             MapKind kind);
  void UnknownKey(const Entry& e, std::string_view context,
                  const std::vector<std::string_view>& candidates);

  // Typed values. Each reports its own error and returns nullopt on failure.
  std::optional<std::string> Scalar(const Entry& e, std::string_view context,
                                    std::string_view expected);
  std::optional<int64_t> Integer(const Entry& e, std::string_view context,
                                 std::string_view expected, int64_t min, int64_t max);
  std::optional<bool> Bool(const Entry& e, std::string_view context);
  std::optional<Duration> DurationValue(const Entry& e, std::string_view context,
                                        bool allow_zero);
  std::optional<uint64_t> SizeValue(const Entry& e, std::string_view context);

  // The keys a task shares with `defaults`. False when `e` is none of them.
  bool ReadSetting(const Entry& e, std::string_view context, Settings* settings);
  void ReadBackend(const Entry& e, std::string_view context, Settings* settings);
  void ReadEnv(const Entry& e, std::string_view context, Settings* settings);

  void ReadDefaults(const Entry& e);
  void ReadTasks(const Entry& e, RawJob* job);
  void ReadTask(const Entry& e, RawTask* task);
  // Reads `run` into `run` (one string for the shell, or the argv items).
  void ReadRun(const Entry& e, std::string_view context, RawTask* task,
               std::vector<Located>* run);
  void ReadNeeds(const Entry& e, std::string_view context, RawTask* task);
  void ReadMatrix(const Entry& e, std::string_view context, RawTask* task);
  // Applies `defaults` under the task's own settings and resolves the
  // `${matrix.KEY}` references of run, env and cwd.
  void Finish(Settings own, const std::vector<Located>& run, RawTask* task);

  TextIndex index_;
  size_t bom_;
  ErrorSink* errors_;
  Settings defaults_;
};

}  // namespace drover::spec::internal

#endif  // DROVER_CORE_SPEC_YAML_READER_H_
