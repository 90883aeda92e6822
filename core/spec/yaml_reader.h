// YamlReader: walks a parsed YAML document (yaml_doc.h) and fills a
// RawJob, reporting every problem it finds to an ErrorSink and carrying on.
// Internal to core/spec. Not thread-safe; one reader per load.
#ifndef DROVER_CORE_SPEC_YAML_READER_H_
#define DROVER_CORE_SPEC_YAML_READER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/spec/raw_job.h"
#include "core/spec/task_kind.h"
#include "core/spec/text.h"
#include "core/spec/yaml_doc.h"

namespace drover::spec {
struct WorkerConfig;  // worker_config.h
class TaskKinds;      // task_kind.h
class TaskReader;     // task_kind.h
}  // namespace drover::spec

namespace drover::spec::internal {

// The keys a task shares with `defaults`, beside those its kinds declare
// as settings (task_kind.h).
inline constexpr std::string_view kSettingKeys[] = {
    "backend",       "timeout",      "kill_grace", "retries",
    "retry_backoff", "output_limit", "cache"};
// Bounds `retries` so that attempt counters cannot overflow.
inline constexpr int kMaxRetries = 1000;
// Bounds a pool's `instances`: each is a process on every worker using it.
inline constexpr int kMaxPoolInstances = 1000;
// The JSON text of one `args` or `message`, per instance; a task attempt
// must fit in a protocol message (docs/protocol.md: 4 MiB bodies).
inline constexpr size_t kMaxJsonBytes = 1 << 20;
// The JSON of every instance of every task together: YAML aliases can
// make a small file expand to a lot of JSON, and every instance holds its
// own copy.
inline constexpr uint64_t kMaxJobJsonBytes = 256ull << 20;
// How deep `args` and `message` may nest (YAML aliases can even refer to
// themselves: `&a [*a]`).
inline constexpr int kMaxJsonDepth = 128;
// What reading a job may copy, checked before anything is read (yaml_doc.h,
// Node::weight: text plus 16 bytes a value, aliases repeated, `defaults`
// once per task since each task keeps its own). An alias copies what it
// names each time it is used, so a 1 MB file of them stood for 10 GB and
// killed the coordinator. A spec without aliases (kMaxSpecBytes of text
// at most) weighs less than 40 MiB even with 100,000 tasks each copying
// a few hundred bytes of `defaults`.
inline constexpr uint64_t kMaxExpandedBytes = 64ull << 20;

using YNode = YamlDoc::Node;

// "got 'three'", "got a list", "got a map" or "got nothing", for messages.
std::string Got(const YNode& node);
// True for `key:` with nothing after it, `~` and `null`.
inline bool IsEmpty(const YNode& node) { return node.IsNull(); }

// Bounds a service's `instances`: each is a server process on every worker
// that runs a task needing it.
inline constexpr int kMaxServiceInstances = 1000;

// A key and its value in a map, in file order.
struct Entry {
  std::string key;
  Pos key_pos;
  YNode value;
  Pos value_pos;  // the key's position when the value is empty
};

class YamlReader {
 public:
  // `text` is the document's source (for lines and columns), `bom` the
  // length of a byte order mark yaml-cpp skipped before counting offsets.
  YamlReader(std::string_view text, size_t bom, ErrorSink* errors)
      : text_(text), index_(text), bom_(bom), errors_(errors) {}

  // Reads the document's root into `job`. `job->name` is left empty when
  // the file has no `name:`.
  void ReadJob(const YNode& root, RawJob* job);
  // worker_config.cc: reads a worker configuration file's root (its pools
  // and plugins through the job's own readers).
  void ReadWorkerConfig(const YNode& root, WorkerConfig* config);
  // LoadOptions::undeclared_pools.
  void set_undeclared_pools(bool allow) { undeclared_pools_ = allow; }
  // LoadOptions::kinds; required by ReadJob.
  void set_kinds(const TaskKinds* kinds) { kinds_ = kinds; }

  // The 1-based line and character column of a byte offset as yaml-cpp
  // counts it (after a byte order mark), or of a node.
  Pos At(uint32_t offset) const;
  Pos At(const YNode& node) const { return At(node.offset()); }

 private:
  using Entry = internal::Entry;
  enum class MapKind { kKeys, kTasks };
  // What a task's `pool` names, once `pools` is read.
  struct PoolRef {
    bool ok = false;   // declared without errors
    bool cow = false;  // mode cow (meaningful when ok)
  };
  friend class ::drover::spec::TaskReader;  // the kinds' view of a task
  struct JsonBuild;  // json_reader.cc

  void Error(Pos where, std::string message) { errors_->Add(where, std::move(message)); }

  // expansion_cap.cc: true when the document `root` weighs at most
  // kMaxExpandedBytes; else reports where the count passes it (the alias,
  // or the innermost value written out) and returns false. Reads nothing.
  bool WithinExpansionCap(const YNode& root);
  // Reports where `node`, which takes `used` past the cap, passes it: the
  // alias if it was written as one at `alias` (else kNoOffset), or the
  // innermost part of it that does. `subject` names it for the message
  // ("'run' in task 'a'"). Returns false.
  bool PastCap(const YNode& node, uint32_t alias, const std::string& subject,
               uint64_t used);
  // "SUBJECT takes the job past 64 MiB, ..." and `why`, at `where`.
  void OverExpansionCap(Pos where, const std::string& subject, std::string_view why = "");
  // "*name", the alias written at `offset`.
  std::string AliasText(uint32_t offset) const;

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
  // A key some kind declares as a setting, read by its declared type.
  void ReadKindSetting(const Entry& e, std::string_view context, KeyType type,
                       std::string_view expected, Settings* settings);
  std::optional<RawEnv> ReadEnv(const Entry& e, std::string_view context);
  // limits_reader.cc: `limits`, a map of cpu, memory, files and processes.
  std::optional<TaskLimits> ReadLimits(const Entry& e, std::string_view context);
  NameRef ReadFnName(const Entry& e, std::string_view context);
  NameRef ReadPoolName(const Entry& e, std::string_view context);
  NameRef ReadServiceName(const Entry& e, std::string_view context);

  // schedule_reader.cc: `schedule`, `timezone`, `concurrency`, `catchup`
  // (any of them may be absent).
  void ReadSchedule(const std::optional<Entry>& schedule, const std::optional<Entry>& timezone,
                    const std::optional<Entry>& concurrency,
                    const std::optional<Entry>& catchup, RawJob* job);

  // service_reader.cc: `services`, a cluster task's `request`, and the
  // `${services.NAME.port|host}` references of any task.
  void ReadServices(const Entry& e, RawJob* job);
  void ReadService(const Entry& e, RawJob* job);
  void ReadWorkerService(const Entry& e, const Entry& from, const std::vector<Entry>& entries,
                         ServiceDecl* service);
  bool ReadListen(const Entry& e, std::string_view context, ServiceDecl* service);
  bool ReadReady(const Entry& e, std::string_view context, ServiceDecl* service);
  // Checks every `${services.` reference in `text` (a value written at
  // `where`) and adds the services it names to task->services.
  void NoteServiceRefs(std::string_view text, Pos where, RawTask* task);
  void NoteServiceRefs(const JsonTemplate& json, Pos where, RawTask* task);
  // Sorts task->services and drops repeats.
  static void SortServices(RawTask* task);

  // pool_reader.cc: `pools` and `plugins`.
  void ReadPools(const Entry& e, RawJob* job);
  void ReadPool(const Entry& e, RawJob* job);
  void ReadPlugins(const Entry& e, RawJob* job);

  void ReadDefaults(const Entry& e);
  void ReadTasks(const Entry& e, RawJob* job);
  void ReadTask(const Entry& e, RawTask* task);
  // Reads a command (`run` of a task, `command` of a pool) into `argv`:
  // one string for the shell (then `*shell` is set), or the argv items.
  void ReadArgv(const Entry& e, std::string_view context, bool* shell,
                std::vector<Located>* argv);
  void ReadNeeds(const Entry& e, std::string_view context, RawTask* task);
  // inputs_reader.cc: `inputs: [PATH or glob, ...]` (docs/spec.md, "Caching").
  void ReadInputs(const Entry& e, std::string_view context, RawTask* task);
  void ReadMatrix(const Entry& e, std::string_view context, RawTask* task);
  // A matrix key written as a string holding `${tasks.`: a dynamic key
  // when the string is exactly one reference, else an error.
  void ReadDynamicKey(const Entry& key, const std::string& key_ref, RawTask* task);
  // backend_keys.cc: applies `defaults` under the task's own settings,
  // has the task's kind read its keys (task_kind.h), and reports the keys
  // of other kinds the task holds. `entries` are the task's own.
  void Finish(Settings own, const std::vector<Entry>& entries, RawTask* task);
  // "'KEY' in task 'a' only applies to backend B; this task's backend is C"
  void NotForBackend(const Entry& e, std::string_view applies_to, const RawTask& task);
  Template Compile(const Located& located, RawTask* task);

  // json_reader.cc: `args` or `message` (any YAML value) as JSON text.
  JsonTemplate ReadJson(const Entry& e, RawTask* task);
  void AppendJson(const YNode& node, Pos where, int depth, JsonBuild* b);
  void AppendJsonScalar(const YNode& node, Pos where, JsonBuild* b);

  std::string_view text_;
  TextIndex index_;
  size_t bom_;
  ErrorSink* errors_;
  Settings defaults_;
  // Every pool declared, well-formed or not, by name; and their names in
  // file order, for "did you mean".
  std::unordered_map<std::string, PoolRef> pools_;
  std::vector<std::string> pool_names_;
  bool pools_unreadable_ = false;  // `pools` was not a map: names are unknown
  // The same for `services`: name -> declared without errors.
  std::unordered_map<std::string, bool> services_;
  std::vector<std::string> service_names_;
  bool services_unreadable_ = false;
  const TaskKinds* kinds_ = nullptr;  // LoadOptions::kinds
  const RawJob* job_ = nullptr;       // the job ReadJob fills
  uint64_t json_bytes_ = 0;        // of every instance's args and message so far
  bool json_over_job_cap_ = false;
  bool undeclared_pools_ = false;  // LoadOptions::undeclared_pools
};

}  // namespace drover::spec::internal

#endif  // DROVER_CORE_SPEC_YAML_READER_H_
