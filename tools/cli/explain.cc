// `drover explain [JOB] TASK`: why a task ran or was cached, from the
// decision its cache lookup recorded (docs/state.md, "Cache"): the first
// part of its key that changed since the newest earlier success, or the
// job and attempt a cached task took its result from.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/coordinator/cache_key.h"
#include "core/store/store.h"
#include "tools/cli/commands.h"

namespace drover::cli {
namespace {

std::string PartName(const cache::KeyPart& p) {
  switch (p.kind) {
    case cache::PartKind::kDefinition:
      return "definition";
    case cache::PartKind::kInput:
      return "input " + p.name;
    case cache::PartKind::kOutput:
      return "output " + p.task + "." + p.name;
    case cache::PartKind::kArtifact:
      return "artifact " + p.task + "/" + p.name;
  }
  return p.name;
}

nlohmann::json DecisionJson(const store::TaskRecord& row,
                            const std::optional<store::CacheDecisionRecord>& d) {
  nlohmann::json out = {{"task", row.name}, {"state", row.state}};
  if (!d) {
    out["explanation"] = nullptr;
    return out;
  }
  out["cached"] = d->cached;
  out["explanation"] = d->explanation;
  out["key"] = d->key;
  nlohmann::json parts = nlohmann::json::parse(
      d->parts_json.empty() ? "[]" : d->parts_json, nullptr, /*allow_exceptions=*/false);
  out["parts"] = parts.is_discarded() ? nlohmann::json::array() : parts;
  if (d->cached) {
    out["source"] = {
        {"job", d->source_job}, {"task", d->source_task}, {"attempt", d->source_attempt}};
  }
  return out;
}

void PrintDecision(const store::TaskRecord& row,
                   const std::optional<store::CacheDecisionRecord>& d) {
  if (!d) {
    std::printf(
        "%s (%s): not looked up in the cache (the task has no 'cache: true', or "
        "it never became ready)\n",
        row.name.c_str(), row.state.c_str());
    return;
  }
  std::printf("%s (%s): %s\n", row.name.c_str(), row.state.c_str(),
              d->explanation.c_str());
  if (d->key.empty()) return;
  std::printf("  key %s, made of:\n", d->key.c_str());
  for (const cache::KeyPart& p :
       cache::PartsFromJson(d->parts_json).value_or(std::vector<cache::KeyPart>())) {
    std::printf("    %-40s %s\n", PartName(p).c_str(), p.value.c_str());
  }
}

}  // namespace

int ExplainCommand(const ExplainArgs& args) {
  if (args.positional.empty() || args.positional.size() > 2) {
    std::fprintf(stderr, "drover explain: give TASK or JOB TASK\n");
    return kExitUsage;
  }
  const std::string job_id = args.positional.size() == 2 ? args.positional[0] : "";
  const std::string& task = args.positional.back();
  std::unique_ptr<store::Store> store;
  store::JobRecord job;
  if (!OpenJob(args.state_dir, job_id, &store, &job)) return kExitFailed;
  auto rows = store->Tasks(job.id);
  if (!rows.ok()) {
    std::fprintf(stderr, "drover: %s\n", rows.status().ToString().c_str());
    return kExitFailed;
  }
  const std::vector<const store::TaskRecord*> chosen = ChooseInstances(*rows, task);
  if (chosen.empty()) {
    // A running job's tasks that have not started have no row yet.
    std::fprintf(stderr, "drover: job %s has no task '%s'%s\n", job.id.c_str(),
                 task.c_str(),
                 job.state == "running" ? " (or it has not started yet)" : "");
    return kExitFailed;
  }
  nlohmann::json list = nlohmann::json::array();
  if (!args.json) std::printf("job %s (%s)\n", job.id.c_str(), job.name.c_str());
  for (const store::TaskRecord* row : chosen) {
    auto d = store->CacheDecision(job.id, row->name);
    if (!d.ok()) {
      std::fprintf(stderr, "drover: %s\n", d.status().ToString().c_str());
      return kExitFailed;
    }
    if (args.json) {
      list.push_back(DecisionJson(*row, *d));
    } else {
      PrintDecision(*row, *d);
    }
  }
  if (args.json) {
    std::printf("%s\n", nlohmann::json{{"job", job.id}, {"tasks", list}}.dump(2).c_str());
  }
  return kExitOk;
}

}  // namespace drover::cli
