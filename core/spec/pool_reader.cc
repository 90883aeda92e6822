// YamlReader, part three: the top-level `pools` (the fork backend's warm
// processes) and `plugins` (shared libraries of functions).
#include <limits>
#include <unordered_map>

#include "core/spec/text.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec::internal {
namespace {

constexpr std::string_view kPoolKeys[] = {"command", "instances", "max_tasks", "idle_timeout",
                                          "mode",    "env",       "cwd"};
constexpr std::string_view kPoolModes[] = {"process", "cow"};

std::string PoolRefText(std::string_view name) { return "pool " + Quoted(name); }

}  // namespace

void YamlReader::ReadPools(const Entry& e, RawJob* job) {
  if (!e.value.IsMap()) {
    Error(e.value_pos, "'pools' must be a map of pool name to pool, " + Got(e.value));
    pools_unreadable_ = true;
    return;
  }
  for (const Entry& entry : Entries(e.value, " in 'pools'", MapKind::kKeys)) {
    ReadPool(entry, job);
  }
}

void YamlReader::ReadPool(const Entry& e, RawJob* job) {
  // Declared even when broken, so that tasks naming it are not told the
  // pool does not exist on top of what is wrong with it.
  PoolRef& ref = pools_[e.key];
  pool_names_.push_back(e.key);
  const size_t errors_before = errors_->size();
  const std::string context = " in " + PoolRefText(e.key);
  if (!IsValidName(e.key)) {
    Error(e.key_pos, "invalid pool name " + Quoted(e.key) +
                         ": use letters, digits, '_', '.' and '-'");
  }
  if (!e.value.IsMap()) {
    Error(e.value_pos,
          PoolRefText(e.key) + " must be a map with at least 'command', " + Got(e.value));
    return;
  }

  PoolDecl pool;
  pool.name = e.key;
  pool.where = SourceLocation{errors_->file(), e.key_pos.line, e.key_pos.column};
  const std::vector<std::string_view> candidates(std::begin(kPoolKeys), std::end(kPoolKeys));
  const std::vector<Entry> entries = Entries(e.value, context, MapKind::kKeys);
  const Entry* command = nullptr;
  bool mode_ok = true;
  for (const Entry& entry : entries) {
    const std::string& key = entry.key;
    if (key == "command") {
      command = &entry;
    } else if (key == "instances") {
      if (auto n = Integer(entry, context, "an integer of at least 1", 1, kMaxPoolInstances)) {
        pool.instances = static_cast<int>(*n);
      }
    } else if (key == "max_tasks") {
      if (auto n = Integer(entry, context, "a non-negative integer (0: never recycle)", 0,
                           std::numeric_limits<int>::max())) {
        pool.max_tasks = static_cast<int>(*n);
      }
    } else if (key == "idle_timeout") {
      // Zero would read as "never" to the backend: leave the key out instead.
      if (auto d = DurationValue(entry, context, /*allow_zero=*/false)) pool.idle_timeout = *d;
    } else if (key == "mode") {
      mode_ok = false;
      const std::optional<std::string> mode = Scalar(entry, context, "process or cow");
      if (!mode) continue;
      if (*mode == "process" || *mode == "cow") {
        pool.mode = *mode;
        mode_ok = true;
        continue;
      }
      const std::vector<std::string_view> modes(std::begin(kPoolModes), std::end(kPoolModes));
      std::string hint = DidYouMean(*mode, modes);
      if (hint.empty()) hint = " (the modes are process and cow)";
      Error(entry.value_pos, "unknown mode " + Quoted(*mode) + context + hint);
    } else if (key == "env") {
      if (std::optional<RawEnv> env = ReadEnv(entry, context)) {
        for (auto& [name, value] : *env) pool.env.emplace_back(name, value.text);
      }
    } else if (key == "cwd") {
      if (auto text = Scalar(entry, context, "a directory")) pool.cwd = std::move(*text);
    } else {
      UnknownKey(entry, context, candidates);
    }
  }

  const bool cow = pool.mode == "cow";
  if (mode_ok && cow && command != nullptr) {
    Error(command->key_pos, "'command'" + context +
                                " does not apply to mode cow: its processes are forked from "
                                "the worker and call registered functions ('fn' of a task)");
  } else if (mode_ok && !cow && command == nullptr) {
    Error(e.key_pos, PoolRefText(e.key) +
                         " has no 'command' (the program its processes run; or give it "
                         "'mode: cow')");
  }
  if (command != nullptr && !(mode_ok && cow)) {
    bool shell = false;
    std::vector<Located> argv;
    ReadArgv(*command, context, &shell, &argv);
    if (shell && !argv.empty()) pool.command = {"/bin/sh", "-c"};
    for (Located& arg : argv) pool.command.push_back(std::move(arg.text));
  }

  if (errors_->size() != errors_before) return;
  ref.ok = true;
  ref.cow = cow;
  job->pools.push_back(std::move(pool));
}

void YamlReader::ReadPlugins(const Entry& e, RawJob* job) {
  if (!e.value.IsSequence()) {
    Error(e.value_pos,
          "'plugins' must be a list of paths to shared libraries, " + Got(e.value));
    return;
  }
  std::unordered_map<std::string, int> first_line;
  for (size_t i = 0; i < e.value.size(); ++i) {
    const YNode item = e.value.Item(i);
    const std::string number = std::to_string(i + 1);
    const Pos where = IsEmpty(item) ? e.value_pos : At(item);
    if (!item.IsScalar()) {
      Error(where, "'plugins' item " + number + " must be a path (a string), " + Got(item));
      continue;
    }
    const std::string& path = item.Scalar();
    if (path.empty()) {
      Error(where, "'plugins' item " + number + " is empty");
      continue;
    }
    const auto [seen, inserted] = first_line.emplace(path, where.line);
    if (!inserted) {
      Error(where, "duplicate plugin " + Quoted(path) + " (first at line " +
                       std::to_string(seen->second) + ")");
      continue;
    }
    job->plugins.push_back(path);
  }
}

}  // namespace drover::spec::internal
