// The Store's cache tables (docs/state.md, "Cache"): cache_entries,
// cache_decisions and job_inputs. Kept apart from store.cc; the writes go
// through the same batch check and journal as every other batch write.
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "core/store/rows.h"
#include "core/store/sqlite_util.h"
#include "core/store/store.h"

namespace drover::store {
namespace {

constexpr const char* kEntryCols =
    "attempt_id, key, job_id, job_name, task, attempt, parts_json, result_json, "
    "outputs_json, artifacts_json, created_ms";

CacheEntryRecord ReadEntry(const Statement::Use& u) {
  CacheEntryRecord e;
  e.attempt_id = FromStored(u.Int(0));
  e.key = u.Text(1);
  e.job_id = u.Text(2);
  e.job_name = u.Text(3);
  e.task = u.Text(4);
  e.attempt = static_cast<uint32_t>(u.Int(5));
  e.parts_json = u.Text(6);
  e.result_json = u.Text(7);
  e.outputs_json = u.Text(8);
  e.artifacts_json = u.Text(9);
  e.created_ms = u.Int(10);
  return e;
}

Result<std::vector<CacheEntryRecord>> ReadEntries(Statement::Use& u) {
  std::vector<CacheEntryRecord> out;
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(ReadEntry(u));
  }
}

}  // namespace

std::string ArtifactsToJson(const std::vector<ArtifactRecord>& artifacts) {
  nlohmann::json list = nlohmann::json::array();
  for (const ArtifactRecord& a : artifacts) {
    list.push_back(
        {{"path", a.path}, {"sha256", a.sha256}, {"size", a.size}, {"mode", a.mode}});
  }
  return list.dump();
}

std::optional<std::vector<ArtifactRecord>> ArtifactsFromJson(std::string_view json) {
  if (json.empty()) return std::vector<ArtifactRecord>();
  nlohmann::json list = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!list.is_array()) return std::nullopt;
  std::vector<ArtifactRecord> out;
  for (const nlohmann::json& item : list) {
    if (!item.is_object()) return std::nullopt;
    auto path = item.find("path");
    auto sha = item.find("sha256");
    auto size = item.find("size");
    auto mode = item.find("mode");
    if (path == item.end() || !path->is_string() || sha == item.end() ||
        !sha->is_string() || size == item.end() || !size->is_number_unsigned() ||
        mode == item.end() || !mode->is_number_unsigned()) {
      return std::nullopt;
    }
    ArtifactRecord& r = out.emplace_back();
    r.path = path->get<std::string>();
    r.sha256 = sha->get<std::string>();
    r.size = size->get<uint64_t>();
    r.mode = mode->get<uint32_t>();
  }
  return out;
}

Status Store::InsertCacheEntry(const CacheEntryRecord& e) {
  return Journal(InsertCacheEntryNow(e),
                 [this, e = e] { return InsertCacheEntryNow(e); });
}

Status Store::InsertCacheEntryNow(const CacheEntryRecord& e) {
  DROVER_RETURN_IF_ERROR(CheckBatch());
  Statement st;
  DROVER_RETURN_IF_ERROR(
      st.Prepare(Db(),
                 Sql({"INSERT OR REPLACE INTO cache_entries (", kEntryCols,
                      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"})
                     .c_str(),
                 "insert into cache_entries"));
  Statement::Use u(st);
  u.Bind(1, AsStored(e.attempt_id)).Bind(2, e.key).Bind(3, e.job_id).Bind(4, e.job_name);
  u.Bind(5, e.task).Bind(6, int64_t{e.attempt}).Bind(7, e.parts_json);
  u.Bind(8, e.result_json).Bind(9, e.outputs_json).Bind(10, e.artifacts_json);
  u.Bind(11, e.created_ms);
  DROVER_RETURN_IF_ERROR(
      u.Run().WithContext("cache entry of attempt " + std::to_string(e.attempt_id)));
  return Status::Ok();
}

Result<std::vector<CacheEntryRecord>> Store::CacheEntries(const std::string& key,
                                                          uint32_t limit) {
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(
      Db(),
      Sql({"SELECT ", kEntryCols,
           " FROM cache_entries WHERE key = ?1 ORDER BY attempt_id DESC LIMIT ?2"})
          .c_str(),
      "select cache entries"));
  Statement::Use u(st);
  u.Bind(1, key).Bind(2, int64_t{limit});
  return ReadEntries(u);
}

Result<std::optional<CacheEntryRecord>> Store::LatestCacheEntry(
    const std::string& job_name, const std::string& task) {
  Statement st;
  DROVER_RETURN_IF_ERROR(
      st.Prepare(Db(),
                 Sql({"SELECT ", kEntryCols,
                      " FROM cache_entries WHERE job_name = ?1 AND task = ?2 "
                      "ORDER BY attempt_id DESC LIMIT 1"})
                     .c_str(),
                 "select latest cache entry"));
  Statement::Use u(st);
  u.Bind(1, job_name).Bind(2, task);
  auto entries = ReadEntries(u);
  if (!entries.ok()) return entries.status();
  if (entries->empty()) return std::optional<CacheEntryRecord>();
  return std::optional<CacheEntryRecord>(std::move(entries->front()));
}

Status Store::PutCacheDecision(const CacheDecisionRecord& d) {
  return Journal(PutCacheDecisionNow(d),
                 [this, d = d] { return PutCacheDecisionNow(d); });
}

Status Store::PutCacheDecisionNow(const CacheDecisionRecord& d) {
  DROVER_RETURN_IF_ERROR(CheckBatch());
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(
      Db(),
      "INSERT OR REPLACE INTO cache_decisions (job_id, task, key, parts_json, cached, "
      "hit_id, source_job, source_task, source_attempt, explanation, decided_ms) VALUES "
      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
      "insert into cache_decisions"));
  Statement::Use u(st);
  u.Bind(1, d.job_id).Bind(2, d.task).Bind(3, d.key).Bind(4, d.parts_json);
  u.Bind(5, int64_t{d.cached ? 1 : 0}).Bind(6, AsStored(d.hit_id)).Bind(7, d.source_job);
  u.Bind(8, d.source_task).Bind(9, int64_t{d.source_attempt}).Bind(10, d.explanation);
  u.Bind(11, d.decided_ms);
  DROVER_RETURN_IF_ERROR(u.Run().WithContext("cache decision of task " + d.task));
  return Status::Ok();
}

Result<std::optional<CacheDecisionRecord>> Store::CacheDecision(const std::string& job_id,
                                                                const std::string& task) {
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(
      Db(),
      "SELECT job_id, task, key, parts_json, cached, hit_id, source_job, source_task, "
      "source_attempt, explanation, decided_ms FROM cache_decisions "
      "WHERE job_id = ?1 AND task = ?2",
      "select cache decision"));
  Statement::Use u(st);
  u.Bind(1, job_id).Bind(2, task);
  Result<bool> row = u.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<CacheDecisionRecord>();
  CacheDecisionRecord d;
  d.job_id = u.Text(0);
  d.task = u.Text(1);
  d.key = u.Text(2);
  d.parts_json = u.Text(3);
  d.cached = u.Int(4) != 0;
  d.hit_id = FromStored(u.Int(5));
  d.source_job = u.Text(6);
  d.source_task = u.Text(7);
  d.source_attempt = static_cast<uint32_t>(u.Int(8));
  d.explanation = u.Text(9);
  d.decided_ms = u.Int(10);
  return std::optional<CacheDecisionRecord>(std::move(d));
}

Status Store::PutJobInputs(const JobInputsRecord& r) {
  return Journal(PutJobInputsNow(r), [this, r = r] { return PutJobInputsNow(r); });
}

Status Store::PutJobInputsNow(const JobInputsRecord& r) {
  DROVER_RETURN_IF_ERROR(CheckBatch());
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(Db(),
                                    "INSERT OR REPLACE INTO job_inputs (job_id, "
                                    "no_cache, inputs_json) VALUES (?1, ?2, ?3)",
                                    "insert into job_inputs"));
  Statement::Use u(st);
  u.Bind(1, r.job_id).Bind(2, int64_t{r.no_cache ? 1 : 0}).Bind(3, r.inputs_json);
  DROVER_RETURN_IF_ERROR(u.Run().WithContext("inputs of job " + r.job_id));
  return Status::Ok();
}

Result<std::optional<JobInputsRecord>> Store::JobInputs(const std::string& job_id) {
  Statement st;
  DROVER_RETURN_IF_ERROR(st.Prepare(
      Db(), "SELECT job_id, no_cache, inputs_json FROM job_inputs WHERE job_id = ?1",
      "select job inputs"));
  Statement::Use u(st);
  u.Bind(1, job_id);
  Result<bool> row = u.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<JobInputsRecord>();
  JobInputsRecord r;
  r.job_id = u.Text(0);
  r.no_cache = u.Int(1) != 0;
  r.inputs_json = u.Text(2);
  return std::optional<JobInputsRecord>(std::move(r));
}

}  // namespace drover::store
