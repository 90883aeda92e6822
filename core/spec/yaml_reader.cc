// YamlReader, part one: maps, typed values, the top level, `defaults` and
// the settings a task shares with it. Tasks themselves: task_reader.cc.
#include "core/spec/yaml_reader.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "core/spec/text.h"

namespace drover::spec::internal {
namespace {

// Keys of a task that `defaults` cannot hold: they say what one task does
// (and so does every key of a kind that is not a setting).
constexpr std::string_view kPerTaskKeys[] = {"needs", "matrix", "inputs"};

// "a, b, c and d"
std::string ListOf(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += names[i];
  }
  return out;
}

}  // namespace

std::string Got(const YNode& node) {
  switch (node.kind()) {
    case YamlDoc::Kind::kScalar:
      return "got " + Quoted(node.Scalar());
    case YamlDoc::Kind::kSequence:
      return "got a list";
    case YamlDoc::Kind::kMap:
      return "got a map";
    case YamlDoc::Kind::kNull:
      break;
  }
  return "got nothing";
}

Pos YamlReader::At(uint32_t offset) const {
  if (offset == YamlDoc::kNoOffset) return Pos{};
  // yaml-cpp counts offsets after a BOM, and columns in bytes; an editor
  // counts characters.
  const size_t at = static_cast<size_t>(offset) + bom_;
  return Pos{index_.Line(at), index_.Column(at)};
}

std::vector<YamlReader::Entry> YamlReader::Entries(const YNode& map,
                                                   std::string_view context,
                                                   MapKind kind) {
  std::vector<Entry> entries;
  entries.reserve(map.size());
  std::unordered_map<std::string, int> first_line;
  for (size_t i = 0; i < map.size(); ++i) {
    const YNode key = map.Key(i);
    const YNode value = map.Value(i);
    const Pos key_pos = At(key);
    if (!key.IsScalar()) {
      Error(key_pos, kind == MapKind::kTasks
                         ? "a task name must be a string, " + Got(key)
                         : "keys" + std::string(context) + " must be strings, " + Got(key));
      continue;
    }
    const auto [seen, inserted] = first_line.emplace(key.Scalar(), key_pos.line);
    if (!inserted) {
      Error(key_pos, kind == MapKind::kTasks
                         ? "duplicate task " + Quoted(key.Scalar()) +
                               " (first defined at line " + std::to_string(seen->second) + ")"
                         : "duplicate key " + Quoted(key.Scalar()) + std::string(context) +
                               " (first at line " + std::to_string(seen->second) + ")");
      continue;
    }
    entries.push_back(Entry{key.Scalar(), key_pos, value,
                            IsEmpty(value) ? key_pos : At(value)});
  }
  return entries;
}

void YamlReader::UnknownKey(const Entry& e, std::string_view context,
                            const std::vector<std::string_view>& candidates) {
  if (e.key == "<<") {
    Error(e.key_pos,
          "YAML merge keys ('<<') are not supported: put settings shared by "
          "tasks in 'defaults'");
    return;
  }
  Error(e.key_pos, "unknown key " + Quoted(e.key) + std::string(context) +
                       DidYouMean(e.key, candidates));
}

std::optional<std::string> YamlReader::Scalar(const Entry& e, std::string_view context,
                                              std::string_view expected) {
  if (IsEmpty(e.value)) {
    Error(e.value_pos, Quoted(e.key) + std::string(context) + " has no value");
    return std::nullopt;
  }
  if (!e.value.IsScalar()) {
    Error(e.value_pos, Quoted(e.key) + std::string(context) + " must be " +
                           std::string(expected) + ", " + Got(e.value));
    return std::nullopt;
  }
  return e.value.Scalar();
}

std::optional<int64_t> YamlReader::Integer(const Entry& e, std::string_view context,
                                           std::string_view expected, int64_t min,
                                           int64_t max) {
  const std::optional<std::string> text = Scalar(e, context, expected);
  if (!text) return std::nullopt;
  const std::optional<int64_t> value = ParseInt(*text);
  if (!value || *value < min) {
    Error(e.value_pos, Quoted(e.key) + std::string(context) + " must be " +
                           std::string(expected) + ", " + Got(e.value));
    return std::nullopt;
  }
  if (*value > max) {
    Error(e.value_pos, Quoted(e.key) + std::string(context) + " must be at most " +
                           WithCommas(static_cast<uint64_t>(max)) + ", " + Got(e.value));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> YamlReader::Bool(const Entry& e, std::string_view context) {
  const std::optional<std::string> text = Scalar(e, context, "true or false");
  if (!text) return std::nullopt;
  // YAML 1.1's spellings, as yaml-cpp reads them.
  for (std::string_view yes : {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"}) {
    if (*text == yes) return true;
  }
  for (std::string_view no : {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"}) {
    if (*text == no) return false;
  }
  Error(e.value_pos,
        Quoted(e.key) + std::string(context) + " must be true or false, " + Got(e.value));
  return std::nullopt;
}

std::optional<Duration> YamlReader::DurationValue(const Entry& e,
                                                  std::string_view context,
                                                  bool allow_zero) {
  constexpr std::string_view kExpected = "a duration such as 500ms, 30s, 5m or 1h30m";
  const std::optional<std::string> text = Scalar(e, context, kExpected);
  if (!text) return std::nullopt;
  const std::optional<Duration> value = ParseDuration(*text);
  if (!value) {
    Error(e.value_pos, Quoted(e.key) + std::string(context) + " must be " +
                           std::string(kExpected) + ", " + Got(e.value));
    return std::nullopt;
  }
  if (!allow_zero && value->count() == 0) {
    Error(e.value_pos, Quoted(e.key) + std::string(context) + " must be longer than 0s");
    return std::nullopt;
  }
  return value;
}

std::optional<uint64_t> YamlReader::SizeValue(const Entry& e, std::string_view context) {
  constexpr std::string_view kExpected =
      "a size such as 65536 (bytes), 64KiB, 8MiB, 1GiB or 10MB";
  const std::optional<std::string> text = Scalar(e, context, kExpected);
  if (!text) return std::nullopt;
  const std::optional<uint64_t> value = ParseSize(*text);
  if (!value) {
    Error(e.value_pos, Quoted(e.key) + std::string(context) + " must be " +
                           std::string(kExpected) + ", " + Got(e.value));
    return std::nullopt;
  }
  if (*value == 0) {
    Error(e.value_pos, Quoted(e.key) + std::string(context) + " must be at least 1 byte");
    return std::nullopt;
  }
  return value;
}

bool YamlReader::ReadSetting(const Entry& e, std::string_view context,
                             Settings* settings) {
  const std::string& key = e.key;
  if (key == "backend") {
    ReadBackend(e, context, settings);
  } else if (key == "timeout") {
    settings->timeout = DurationValue(e, context, /*allow_zero=*/false);
  } else if (key == "kill_grace") {
    settings->kill_grace = DurationValue(e, context, /*allow_zero=*/true);
  } else if (key == "retries") {
    if (auto n = Integer(e, context, "a non-negative integer", 0, kMaxRetries)) {
      settings->retries = static_cast<int>(*n);
    }
  } else if (key == "retry_backoff") {
    settings->retry_backoff = DurationValue(e, context, /*allow_zero=*/true);
  } else if (key == "output_limit") {
    settings->output_limit = SizeValue(e, context);
  } else if (key == "cache") {
    settings->cache = Bool(e, context);
  } else if (const TaskKey* k = kinds_ != nullptr ? kinds_->FindKey(key) : nullptr;
             k != nullptr && k->setting) {
    ReadKindSetting(e, context, k->type, k->expected, settings);
  } else {
    return false;
  }
  return true;
}

void YamlReader::ReadKindSetting(const Entry& e, std::string_view context, KeyType type,
                                 std::string_view expected, Settings* settings) {
  KindSetting& out = settings->kind.emplace_back();
  out.key = e.key;
  switch (type) {
    case KeyType::kEnv:
      out.env = ReadEnv(e, context);
      break;
    case KeyType::kText:
      if (auto text = Scalar(e, context, expected)) {
        out.text = Located{std::move(*text), e.value_pos};
      }
      break;
    case KeyType::kFunctionName:
      out.name = ReadFnName(e, context);
      break;
    case KeyType::kPoolName:
      out.name = ReadPoolName(e, context);
      break;
    case KeyType::kServiceName:
      out.name = ReadServiceName(e, context);
      break;
    case KeyType::kLimits:
      out.limits = ReadLimits(e, context);
      break;
    case KeyType::kOther:
    case KeyType::kArgv:
      break;  // not a setting type (TaskKey::setting)
  }
}

void YamlReader::ReadBackend(const Entry& e, std::string_view context,
                             Settings* settings) {
  settings->backend_invalid = true;  // until proven otherwise
  const std::optional<std::string> name = Scalar(e, context, "a backend name");
  if (!name) return;
  if (kinds_->Find(*name) != nullptr) {
    settings->backend = *name;
    settings->backend_invalid = false;
  } else {
    const std::vector<std::string_view> names(kinds_->names().begin(), kinds_->names().end());
    std::string hint = DidYouMean(*name, names);
    if (hint.empty()) hint = " (the backends are " + ListOf(kinds_->names()) + ")";
    Error(e.value_pos, "unknown backend " + Quoted(*name) + std::string(context) + hint);
  }
}

NameRef YamlReader::ReadFnName(const Entry& e, std::string_view context) {
  NameRef ref{std::string(), e.key_pos, /*ok=*/false};
  const std::optional<std::string> name = Scalar(e, context, "a function name");
  if (!name) return ref;
  ref.name = *name;
  if (!IsValidName(*name)) {
    Error(e.value_pos, "invalid function name " + Quoted(*name) + std::string(context) +
                           ": use letters, digits, '_', '.' and '-'");
    return ref;
  }
  ref.ok = true;
  return ref;
}

NameRef YamlReader::ReadPoolName(const Entry& e, std::string_view context) {
  NameRef ref{std::string(), e.key_pos, /*ok=*/false};
  const std::optional<std::string> name = Scalar(e, context, "a pool name");
  if (!name) return ref;
  ref.name = *name;
  const auto found = pools_.find(*name);
  if (found != pools_.end()) {
    ref.ok = found->second.ok;  // a broken pool was reported where it is declared
    return ref;
  }
  if (pools_unreadable_) return ref;  // `pools` itself was reported
  if (undeclared_pools_) {  // a worker's pool (LoadOptions::undeclared_pools)
    ref.ok = true;
    return ref;
  }
  std::string hint;
  if (pool_names_.empty()) {
    hint = " (no pools are declared: add it under 'pools:')";
  } else {
    const std::vector<std::string_view> names(pool_names_.begin(), pool_names_.end());
    hint = DidYouMean(*name, names);
  }
  Error(e.value_pos, "unknown pool " + Quoted(*name) + std::string(context) + hint);
  return ref;
}

std::optional<RawEnv> YamlReader::ReadEnv(const Entry& e, std::string_view context) {
  if (IsEmpty(e.value) || !e.value.IsMap()) {
    Error(e.value_pos, "'env'" + std::string(context) +
                           " must be a map of NAME: value, " + Got(e.value));
    return std::nullopt;
  }
  const std::string env_context = " in the env" + std::string(context);
  RawEnv env;
  for (const Entry& var : Entries(e.value, env_context, MapKind::kKeys)) {
    const bool bad_name =
        var.key.empty() || var.key.find('=') != std::string::npos ||
        std::any_of(var.key.begin(), var.key.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20; });
    if (bad_name) {
      Error(var.key_pos, "invalid environment variable name " + Quoted(var.key) +
                             std::string(context) +
                             " (it must be non-empty, without '=' or control characters)");
      continue;
    }
    if (IsEmpty(var.value)) {
      Error(var.value_pos, "env " + Quoted(var.key) + std::string(context) +
                               " has no value (write " + var.key +
                               ": \"\" for an empty one)");
      continue;
    }
    if (!var.value.IsScalar()) {
      Error(var.value_pos, "env " + Quoted(var.key) + std::string(context) +
                               " must be a string, " + Got(var.value));
      continue;
    }
    env.emplace_back(var.key, Located{var.value.Scalar(), var.value_pos});
  }
  return env;
}

void YamlReader::ReadDefaults(const Entry& e) {
  constexpr std::string_view kContext = " in 'defaults'";
  if (IsEmpty(e.value) || !e.value.IsMap()) {
    Error(e.value_pos, "'defaults' must be a map of task settings, " + Got(e.value));
    return;
  }
  std::vector<std::string_view> candidates(std::begin(kSettingKeys), std::end(kSettingKeys));
  for (const TaskKey& key : kinds_->keys()) {
    if (key.setting) candidates.push_back(key.name);
  }
  for (const Entry& entry : Entries(e.value, kContext, MapKind::kKeys)) {
    if (ReadSetting(entry, kContext, &defaults_)) continue;
    const TaskKey* kind_key = kinds_->FindKey(entry.key);
    if (kind_key != nullptr ||
        std::find(std::begin(kPerTaskKeys), std::end(kPerTaskKeys), entry.key) !=
            std::end(kPerTaskKeys)) {
      Error(entry.key_pos, "'" + entry.key + "' cannot be in 'defaults': it is set per task");
    } else {
      UnknownKey(entry, kContext, candidates);
    }
  }
}

void YamlReader::ReadJob(const YNode& root, RawJob* job) {
  job_ = job;
  if (!root.IsMap()) {
    const Pos where = IsEmpty(root) ? Pos{1, 1} : At(root);
    Error(where, "the top level must be a map with 'version' and 'tasks', " + Got(root));
    return;
  }
  if (!WithinExpansionCap(root)) return;  // before a single copy is made
  const std::vector<std::string_view> candidates = {
      "version", "name",    "defaults", "fail_fast", "priority",    "tasks",
      "pools",   "plugins", "services", "schedule",  "timezone", "concurrency", "catchup"};

  bool has_version = false;
  // Read after the loop, wherever they are in the file: tasks refer to
  // pools, and take defaults.
  std::optional<Entry> pools, services, defaults, tasks;
  std::optional<Entry> schedule, timezone, concurrency, catchup;
  for (const Entry& e : Entries(root, "", MapKind::kKeys)) {
    if (e.key == "version") {
      has_version = true;
      const std::optional<int64_t> version =
          Integer(e, "", "1", std::numeric_limits<int64_t>::min(),
                  std::numeric_limits<int64_t>::max());
      if (version && *version != 1) {
        Error(e.value_pos, "unsupported version " + std::to_string(*version) +
                               ": this version of drover reads version 1");
      }
    } else if (e.key == "name") {
      if (auto name = Scalar(e, "", "a string")) {
        if (name->empty()) {
          Error(e.value_pos, "'name' is empty");
        } else if (HasControlCharacter(*name)) {
          // It is printed in logs and on terminals: a line break would
          // forge a log line, an escape sequence drive the terminal.
          Error(e.value_pos, "'name' " + Quoted(*name) +
                                 " cannot contain control characters (line breaks, tabs, "
                                 "escapes)");
        } else {
          job->name = std::move(*name);
        }
      }
    } else if (e.key == "defaults") {
      defaults = e;
    } else if (e.key == "pools") {
      pools = e;
    } else if (e.key == "services") {
      services = e;
    } else if (e.key == "plugins") {
      ReadPlugins(e, job);
    } else if (e.key == "fail_fast") {
      job->fail_fast = Bool(e, "").value_or(false);
    } else if (e.key == "priority") {
      job->priority = static_cast<int>(
          Integer(e, "", "an integer", std::numeric_limits<int>::min(),
                  std::numeric_limits<int>::max())
              .value_or(0));
    } else if (e.key == "tasks") {
      tasks = e;
    } else if (e.key == "schedule") {
      schedule = e;
    } else if (e.key == "timezone") {
      timezone = e;
    } else if (e.key == "concurrency") {
      concurrency = e;
    } else if (e.key == "catchup") {
      catchup = e;
    } else {
      UnknownKey(e, "", candidates);
    }
  }
  if (!has_version) Error(At(root), "missing 'version': start the file with 'version: 1'");
  if (pools) ReadPools(*pools, job);
  if (services) ReadServices(*services, job);
  if (defaults) ReadDefaults(*defaults);
  ReadSchedule(schedule, timezone, concurrency, catchup, job);
  if (!tasks) {
    Error(At(root), "missing 'tasks': a job needs at least one task");
    return;
  }
  ReadTasks(*tasks, job);
}

}  // namespace drover::spec::internal
