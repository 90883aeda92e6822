// Coordinator::Loop, caching (docs/spec.md, "Caching"): a ready task with
// `cache: true` is looked up once per run before it is placed. Its key
// (cache_key.h) is made from its fingerprint, the input hashes its client
// sent, the upstream outputs it refers to and the artifacts of its needs.
// A hit on an entry whose blobs are all still stored makes the task
// `cached`: its row takes the entry's result and outputs, and the entry's
// artifacts are indexed under the hit's id for this job, so dependents
// receive both exactly as if it had run. Every lookup records why the task
// ran or was cached (cache_decisions), which `drover explain` prints.
#include <algorithm>
#include <set>

#include "core/artifacts/sha256.h"
#include "core/coordinator/loop.h"
#include "core/spec/outputs.h"

namespace drover {
namespace {

// Entries of one key looked at per lookup: the newest whose blobs are all
// there wins; an older one is only reached when gc removed newer blobs.
constexpr uint32_t kEntriesPerLookup = 8;

bool AnyCaches(const spec::JobSpec& spec) {
  bool any = false;
  spec.tasks.ForEachShared(
      [&](const spec::TaskSpec& ts, spec::TaskList::Span) { any = any || ts.cache; });
  return any;
}

}  // namespace

Result<cache::CacheKey> Coordinator::Loop::KeyOf(const Job& job, uint32_t t) {
  const spec::TaskSpec& ts = job.spec.tasks[t];
  std::vector<cache::KeyPart> parts;
  parts.push_back(cache::DefinitionPart(ts.fingerprint));

  std::vector<std::string> patterns;
  patterns.reserve(ts.inputs.size());
  for (const spec::InputDecl& in : ts.inputs) patterns.push_back(in.pattern);
  if (std::string why = cache::InputParts(patterns, job.inputs, &parts); !why.empty()) {
    return FailedPrecondition(why);
  }

  // Upstream outputs it refers to: each instance's value, once. A value
  // that is missing is a part too (the dispatch then fails the task).
  if (ts.deferred) {
    std::set<std::pair<uint32_t, std::string>> seen;
    for (const spec::OutputRef& ref : ts.deferred->refs) {
      const uint32_t first = ref.pick ? *ref.pick : ref.first;
      const uint32_t count = ref.pick ? 1 : ref.count;
      for (uint32_t i = first; i < first + count && i < job.size(); ++i) {
        if (!seen.emplace(i, ref.key).second) continue;
        const Outputs outputs = OutputsFromJson(job.OutputsJson(i)).value_or(Outputs());
        auto value = outputs.find(ref.key);
        parts.push_back(cache::KeyPart{
            cache::PartKind::kOutput, job.spec.tasks.Name(i), ref.key,
            value == outputs.end() ? "missing" : artifacts::Sha256Hex(value->second)});
      }
    }
  }

  // The artifacts its needs give it, as AddArtifacts lists them.
  for (uint32_t need : ts.needs) {
    if (!job.spec.tasks.HasArtifacts(need)) continue;
    auto found = store_->Artifacts(job.record.id, job.spec.tasks.Name(need));
    if (!found.ok()) return found.status();
    for (const store::ArtifactRecord& r : *found) {
      parts.push_back(
          cache::KeyPart{cache::PartKind::kArtifact, r.task, r.path, r.sha256});
    }
  }
  return cache::MakeKey(std::move(parts));
}

bool Coordinator::Loop::TryCache(Job& job, uint32_t t) {
  const spec::TaskSpec& ts = job.spec.tasks[t];
  if (!ts.cache || t >= job.cache_looked_up.size() || job.cache_looked_up[t])
    return false;
  job.cache_looked_up[t] = true;
  const int64_t now_ms = WallMillis(clock_);
  store::CacheDecisionRecord d;
  d.job_id = job.record.id;
  d.task = ts.name;
  d.decided_ms = now_ms;
  auto decide = [&](std::string why) {
    d.explanation = std::move(why);
    Check(store_->PutCacheDecision(d), "record cache decision");
  };

  Result<cache::CacheKey> key = KeyOf(job, t);
  if (!key.ok()) {
    ++metrics_.cache_lookups["miss"];
    decide("ran: no cache key: " + key.status().message());
    return false;
  }
  d.key = key->key;
  d.parts_json = cache::PartsToJson(key->parts);
  if (job.no_cache) {
    decide("ran: the run was started with --no-cache");
    return false;
  }

  auto entries = store_->CacheEntries(key->key, kEntriesPerLookup);
  if (!entries.ok()) {
    Check(entries.status(), "read cache entries");
    decide("ran: the cache could not be read: " + entries.status().message());
    return false;
  }
  const store::CacheEntryRecord* hit = nullptr;
  std::vector<store::ArtifactRecord> files;
  std::string gone;  // why the newest entry of the key cannot be used
  for (const store::CacheEntryRecord& e : *entries) {
    std::optional<std::vector<store::ArtifactRecord>> listed =
        store::ArtifactsFromJson(e.artifacts_json);
    if (!listed) continue;
    auto missing = std::find_if(listed->begin(), listed->end(),
                                [&](const auto& a) { return !blobs_->Has(a.sha256); });
    if (missing != listed->end()) {
      if (gone.empty()) {
        gone = "attempt " + std::to_string(e.attempt) + " of job " + e.job_id +
               " had the same key, but its artifact " + missing->path +
               " is no longer stored (drover gc)";
      }
      continue;
    }
    hit = &e;
    files = std::move(*listed);
    break;
  }

  if (hit == nullptr) {
    ++metrics_.cache_lookups["miss"];
    if (!gone.empty()) {
      decide("ran: " + gone);
      return false;
    }
    auto latest = store_->LatestCacheEntry(job.record.name, ts.name);
    std::optional<std::vector<cache::KeyPart>> before;
    if (latest.ok() && *latest) before = cache::PartsFromJson((*latest)->parts_json);
    if (!before) {
      decide("ran: no earlier successful attempt");
      return false;
    }
    std::string change = cache::FirstChange(*before, key->parts);
    if (change.empty()) change = "its cache key changed";
    decide("ran: " + change + " (since attempt " + std::to_string((*latest)->attempt) +
           " of job " + (*latest)->job_id + ")");
    return false;
  }

  // A hit. Its id comes from the attempt ids, so that the artifact rows it
  // indexes for this job are told apart from every attempt's.
  ++metrics_.cache_lookups["hit"];
  const uint64_t hit_id = next_attempt_id_++;
  d.cached = true;
  d.hit_id = hit_id;
  d.source_job = hit->job_id;
  d.source_task = hit->task;
  d.source_attempt = hit->attempt;
  const std::string from = "job " + hit->job_id + ", task " + hit->task + ", attempt " +
                           std::to_string(hit->attempt);
  decide("cached: the same cache key as " + from);
  for (store::ArtifactRecord& a : files) {
    a.attempt_id = hit_id;
    a.job_id = job.record.id;
    a.task = ts.name;
    a.created_ms = now_ms;
    Check(store_->InsertArtifact(a), "index cached artifact");
  }
  job.plan->MarkCached(t);
  store::TaskRecord& row = job.Row(t);
  row.fingerprint = ts.fingerprint;
  row.state = std::string(dag::TaskStateName(dag::TaskState::kCached));
  row.reason.clear();
  row.exit_code = -1;
  row.signal = 0;
  row.detail = "cached from " + from;
  row.wall_us = 0;
  row.result_json = hit->result_json;
  row.outputs_json = hit->outputs_json;
  row.worker.clear();
  if (row.started_ms == 0) row.started_ms = now_ms;
  row.finished_ms = now_ms;
  row.pending_reason.clear();
  Check(store_->UpdateTask(row), "update task");
  EmitTask(job, t, nullptr);
  job.EndRow(t);  // releases `ts`: not used past here
  MaybeFinishJob(job);
  return true;
}

void Coordinator::Loop::RecordCacheEntry(const Job& job, uint32_t t, uint64_t id,
                                         uint32_t number, const AttemptOutcome& outcome) {
  const spec::TaskSpec& ts = job.spec.tasks[t];
  if (!ts.cache) return;
  auto decision = store_->CacheDecision(job.record.id, ts.name);
  if (!decision.ok()) return Check(decision.status(), "read cache decision");
  // No key was made (inputs without hashes): nothing to record under.
  if (!*decision || (*decision)->key.empty() || (*decision)->cached) return;
  store::CacheEntryRecord e;
  e.attempt_id = id;
  e.key = (*decision)->key;
  e.job_id = job.record.id;
  e.job_name = job.record.name;
  e.task = ts.name;
  e.attempt = number;
  e.parts_json = (*decision)->parts_json;
  e.result_json = outcome.result_json;
  e.outputs_json = OutputsToJson(outcome.outputs);
  if (!ts.artifacts.empty()) {
    // Uploaded before the RESULT, so this attempt's are the task's now.
    auto found = store_->Artifacts(job.record.id, ts.name);
    if (!found.ok()) return Check(found.status(), "read artifacts");
    e.artifacts_json = store::ArtifactsToJson(*found);
  }
  e.created_ms = WallMillis(clock_);
  Check(store_->InsertCacheEntry(e), "record cache entry");
}

void Coordinator::Loop::StoreJobCache(const Job& job) {
  if (!AnyCaches(job.spec)) return;
  store::JobInputsRecord r;
  r.job_id = job.record.id;
  r.no_cache = job.no_cache;
  r.inputs_json = cache::InputHashesToJson(job.inputs);
  Check(store_->PutJobInputs(r), "record job inputs");
}

void Coordinator::Loop::LoadJobCache(Job& job) {
  if (!AnyCaches(job.spec)) return;
  auto found = store_->JobInputs(job.record.id);
  if (!found.ok() || !*found) return;  // none sent: tasks with inputs run
  job.no_cache = (*found)->no_cache;
  job.inputs =
      cache::InputHashesFromJson((*found)->inputs_json).value_or(cache::InputHashes());
}

}  // namespace drover
