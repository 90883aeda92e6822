// The worker configuration file (worker_config.h): the same UTF-8 check,
// YAML parse and error reporting as a job spec, and the job's own readers
// for `pools`, `services` and `plugins`, so both files mean the same by
// them.
#include "core/spec/worker_config.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/base/files.h"
#include "core/spec/raw_job.h"
#include "core/spec/text.h"
#include "core/spec/yaml_doc.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec {
namespace {

using internal::ErrorSink;
using internal::Pos;

constexpr std::string_view kConfigKeys[] = {
    "name",          "coordinator", "slots", "prefetch", "labels",
    "drain_timeout", "spool_dir",   "pools", "services", "plugins"};
// A worker offers at most this many slots of one backend.
constexpr int64_t kMaxSlots = 100'000;

WorkerConfigResult Finish(ErrorSink* errors) {
  WorkerConfigResult result;
  result.errors = errors->Take();
  return result;
}

}  // namespace

namespace internal {

void YamlReader::ReadWorkerConfig(const YNode& root, WorkerConfig* config) {
  if (!root.IsMap()) {
    Error(At(root), "a worker configuration is a map of settings (name, slots, labels, "
                    "pools, ...), " + Got(root));
    return;
  }
  if (!WithinExpansionCap(root)) return;  // before a single copy is made
  const std::vector<std::string_view> candidates(std::begin(kConfigKeys), std::end(kConfigKeys));
  for (const Entry& e : Entries(root, "", MapKind::kKeys)) {
    const std::string& key = e.key;
    if (key == "name") {
      if (auto text = Scalar(e, "", "a worker name")) {
        if (IsValidName(*text)) {
          config->name = std::move(*text);
        } else {
          Error(e.value_pos, "invalid worker name " + Quoted(*text) +
                                 ": use letters, digits, '_', '.' and '-'");
        }
      }
    } else if (key == "coordinator") {
      if (auto text = Scalar(e, "", "an endpoint such as tcp://coordinator:7700")) {
        if (text->find("://") == std::string::npos) {
          Error(e.value_pos, "'coordinator' must be an endpoint such as "
                             "tcp://coordinator:7700, " + Got(e.value));
        } else {
          config->coordinator = std::move(*text);
        }
      }
    } else if (key == "slots") {
      if (!e.value.IsMap()) {
        Error(e.value_pos, "'slots' must be a map of backend to slot count, e.g. "
                           "{spawn: 4, threads: 8}, " + Got(e.value));
        continue;
      }
      for (const Entry& slot : Entries(e.value, " in 'slots'", MapKind::kKeys)) {
        const auto n = Integer(slot, " in 'slots'", "a slot count (an integer from 0)", 0,
                               kMaxSlots);
        if (n) config->slots[slot.key] = static_cast<int>(*n);
      }
    } else if (key == "prefetch") {
      const auto n = Integer(e, "", "a slot count (an integer from 0)", 0, kMaxSlots);
      if (n) config->prefetch = static_cast<int>(*n);
    } else if (key == "labels") {
      if (!e.value.IsMap()) {
        Error(e.value_pos, "'labels' must be a map of label to value, e.g. {zone: a}, " +
                               Got(e.value));
        continue;
      }
      for (const Entry& label : Entries(e.value, " in 'labels'", MapKind::kKeys)) {
        if (!IsValidName(label.key)) {
          Error(label.key_pos, "invalid label " + Quoted(label.key) +
                                   ": use letters, digits, '_', '.' and '-'");
          continue;
        }
        if (auto value = Scalar(label, " in 'labels'", "a string")) {
          config->labels[label.key] = std::move(*value);
        }
      }
    } else if (key == "drain_timeout") {
      config->drain_timeout = DurationValue(e, "", /*allow_zero=*/true);
    } else if (key == "spool_dir") {
      if (auto text = Scalar(e, "", "a directory")) config->spool_dir = std::move(*text);
    } else if (key == "services") {
      RawJob job;
      ReadServices(e, &job);
      for (ServiceDecl& service : job.services) {
        if (service.from_worker) {
          Error(Pos{service.where.line, service.where.column},
                "service " + Quoted(service.name) +
                    ": 'from: worker' is for a job spec (the workers' own service); a "
                    "worker configuration declares the service itself (command, instances, "
                    "listen, ...)");
          continue;
        }
        config->services.push_back(std::move(service));
      }
    } else if (key == "pools" || key == "plugins") {
      RawJob job;
      if (key == "pools") {
        ReadPools(e, &job);
        config->pools = std::move(job.pools);
      } else {
        ReadPlugins(e, &job);
        config->plugins = std::move(job.plugins);
      }
    } else {
      UnknownKey(e, "", candidates);
    }
  }
}

}  // namespace internal

WorkerConfigResult LoadWorkerConfigString(std::string_view text, std::string file) {
  ErrorSink errors(file);
  if (text.size() >= internal::YamlDoc::kNoOffset) {
    errors.Add(Pos{}, "the file is too large (4 GiB or more)");
    return Finish(&errors);
  }
  const size_t bad = internal::FindInvalidUtf8(text);
  if (bad != std::string_view::npos) {
    const internal::TextIndex index(text);
    errors.Add(Pos{index.Line(bad), index.Column(bad)}, "the file is not valid UTF-8");
    return Finish(&errors);
  }
  const size_t bom = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  internal::YamlReader reader(text, bom, &errors);
  internal::YamlParse parsed = internal::ParseYaml(text);
  if (parsed.failed) {
    errors.Add(reader.At(parsed.error_offset), "not valid YAML: " + parsed.error);
    return Finish(&errors);
  }
  WorkerConfig config;
  config.file = file;
  if (parsed.doc) reader.ReadWorkerConfig(parsed.doc->root(), &config);
  if (parsed.second_document != internal::YamlDoc::kNoOffset) {
    errors.Add(reader.At(parsed.second_document),
               "a worker configuration holds one YAML document; this is a second one");
  }
  if (!errors.empty()) return Finish(&errors);
  WorkerConfigResult result;
  result.config = std::move(config);
  return result;
}

WorkerConfigResult LoadWorkerConfigFile(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::string text;
  if (const int err = ReadWholeFile(file, &text, kMaxSpecBytes); err != 0) {
    ErrorSink errors(file);
    errors.Add(Pos{}, internal::ReadFailure(err));
    return Finish(&errors);
  }
  return LoadWorkerConfigString(text, file);
}

}  // namespace drover::spec
