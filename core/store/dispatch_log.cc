// The Store's dispatch log (docs/state.md, "dispatches"): a dispatched
// attempt is recorded in one row a commit, and its `attempts` row is
// written once, whole, when it ends. A task cost an insert at its dispatch
// and an update at its result, each in the attempts B-tree and the second a
// rewrite of a page the commit before had written; it now costs an insert
// (docs/benchmarks.md, session 28). What runs is still in the state file
// before its attempt id leaves the coordinator: a restarted coordinator
// finds it in the view running_attempts.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/base/outputs.h"
#include "core/store/rows.h"
#include "core/store/store.h"
#include "core/store/store_impl.h"

namespace drover::store {

using internal::Context;

namespace {

// [id,"job","task",number,"worker",started_ms,task_idx], the form
// running_attempts reads; false when a name is not valid UTF-8.
bool AppendEntry(const AttemptRecord& a, std::string* out) {
  out->push_back('[');
  *out += std::to_string(a.id);
  out->push_back(',');
  if (!AppendUtf8JsonString(out, a.job_id)) return false;
  out->push_back(',');
  if (!AppendUtf8JsonString(out, a.task)) return false;
  out->push_back(',');
  *out += std::to_string(a.number);
  out->push_back(',');
  if (!AppendUtf8JsonString(out, a.worker)) return false;
  out->push_back(',');
  *out += std::to_string(a.started_ms);
  out->push_back(',');
  *out += std::to_string(a.task_index);
  out->push_back(']');
  return true;
}

// The ended attempts one INSERT writes (WriteEnded), each a row of
// kEndedCols parameters: kAttemptCols, task_row and fingerprint.
constexpr size_t kEndedRows = 16;
constexpr int kEndedCols = 25;

// "(?1, ..., ?25), (?26, ...)": `rows` rows of kEndedCols parameters.
std::string EndedValues(size_t rows) {
  std::string v;
  for (size_t r = 0; r < rows; ++r) {
    if (r > 0) v += ", ";
    v += '(';
    for (int c = 1; c <= kEndedCols; ++c) {
      if (c > 1) v += ", ";
      v += '?' + std::to_string(static_cast<int>(r) * kEndedCols + c);
    }
    v += ')';
  }
  return v;
}

}  // namespace

void Store::Impl::BindEnded(Statement::Use& u, const EndedRecord& e, int k) {
  const AttemptRecord& a = e.attempt;
  u.Bind(k + 1, AsStored(a.id)).Bind(k + 2, a.job_id).Bind(k + 3, a.task);
  u.Bind(k + 4, int64_t{a.number}).Bind(k + 5, a.worker).Bind(k + 6, int64_t{1});
  u.Bind(k + 7, a.started_ms).Bind(k + 8, a.finished_ms);
  BindOutcome(u, a.outcome, /*finished=*/true, e.outputs_json, k);
  u.Bind(k + 23, a.task_index);
  u.Bind(k + 24, int64_t{e.stands ? 1 : 0}).Bind(k + 25, AsStored(e.stands.value_or(0)));
}

Status Store::Impl::PrepareDispatchLog() {
  DROVER_RETURN_IF_ERROR(insert_ended_rows.Prepare(
      db.get(),
      Sql({"INSERT INTO attempts (", kAttemptCols, ", task_row, fingerprint) VALUES ",
           EndedValues(kEndedRows)})
          .c_str(),
      "insert into attempts (ended)"));
  DROVER_RETURN_IF_ERROR(insert_dispatch.Prepare(
      db.get(), "INSERT INTO dispatches (id, last_id, attempts) VALUES (?1, ?2, ?3)",
      "insert into dispatches"));
  DROVER_RETURN_IF_ERROR(delete_dispatch.Prepare(
      db.get(), "DELETE FROM dispatches WHERE id = ?1", "delete from dispatches"));
  DROVER_RETURN_IF_ERROR(load_in_flight.Prepare(
      db.get(),
      "SELECT id, job_id, task, number, worker, started_ms, task_idx, dispatch FROM "
      "running_attempts ORDER BY id",
      "select running attempts"));
  DROVER_RETURN_IF_ERROR(attempt_id_used.Prepare(
      db.get(), "SELECT 1 FROM attempts WHERE id = ?1", "select an attempt id"));
  DROVER_RETURN_IF_ERROR(finished_dispatches.Prepare(
      db.get(),
      "SELECT id FROM dispatches WHERE id NOT IN (SELECT dispatch FROM running_attempts)",
      "select ended dispatches"));
  // kAttemptCols, then task_row (?24) and fingerprint (?25).
  return insert_ended_attempt.Prepare(
      db.get(),
      Sql({"INSERT INTO attempts (", kAttemptCols, ", task_row, fingerprint) VALUES (",
           kAttemptValues, ", ?24, ?25)"})
          .c_str(),
      "insert into attempts (ended)");
}

Status Store::Impl::WriteDispatches() {
  // Every write goes on after one that failed for want of room (it is
  // journaled and redone with the batch, Commit); the first other failure
  // stops them and is returned.
  Status result;
  auto going = [&result] {
    return result.ok() || result.code() == StatusCode::kUnavailable;
  };
  auto go_on = [&](Status s) {
    if (!s.ok() && going()) result = std::move(s);
    return going();
  };
  if (!undispatched.empty()) {
    dispatch_json.clear();
    dispatch_json.push_back('[');
    std::vector<uint64_t> ids;
    ids.reserve(undispatched.size());
    for (uint64_t id : undispatched) {
      auto it = in_flight.find(id);
      // Ended in the batch of its dispatch: its row says all there is.
      if (it == in_flight.end() || it->second.dispatch != 0) continue;
      const size_t before = dispatch_json.size();
      if (dispatch_json.size() > 1) dispatch_json.push_back(',');
      if (AppendEntry(it->second.attempt, &dispatch_json)) {
        ids.push_back(id);
        continue;
      }
      // A name that is not UTF-8 (not one drover makes): this attempt
      // gets its row now, unfinished, as before the log.
      dispatch_json.resize(before);
      const AttemptRecord a = std::move(it->second.attempt);
      in_flight.erase(it);
      Status s = InsertStartedNow(a);
      if (Journals(s)) journal.push_back([this, a] { return InsertStartedNow(a); });
      if (!go_on(std::move(s))) break;
    }
    dispatch_json.push_back(']');
    undispatched.clear();
    if (going() && !ids.empty()) {
      const auto first = static_cast<int64_t>(ids.front());
      const auto last = static_cast<int64_t>(*std::max_element(ids.begin(), ids.end()));
      Status s = InsertDispatchNow(first, last, dispatch_json);
      if (Journals(s)) {
        journal.push_back([this, first, last, json = dispatch_json] {
          return InsertDispatchNow(first, last, json);
        });
      }
      if (s.ok() || s.code() == StatusCode::kUnavailable) {
        for (uint64_t id : ids) in_flight[id].dispatch = first;
        dispatch_open[first] = static_cast<uint32_t>(ids.size());
      }
      go_on(std::move(s));
    }
  }
  for (int64_t row : dispatch_done) {
    if (!going()) break;
    Status s = DeleteDispatchNow(row);
    if (Journals(s)) journal.push_back([this, row] { return DeleteDispatchNow(row); });
    go_on(std::move(s));
  }
  dispatch_done.clear();
  return result;
}

Status Store::Impl::InsertDispatchNow(int64_t first, int64_t last,
                                      const std::string& json) {
  DROVER_RETURN_IF_ERROR(CheckBatch());
  Statement::Use u(insert_dispatch);
  u.Bind(1, first).Bind(2, last).Bind(3, json);
  return Context(u.Run(), "dispatch of attempt", first);
}

Status Store::Impl::DeleteDispatchNow(int64_t row) {
  DROVER_RETURN_IF_ERROR(CheckBatch());
  Statement::Use u(delete_dispatch);
  u.Bind(1, row);
  return Context(u.Run(), "dispatch of attempt", row);
}

Status Store::Impl::InsertStartedNow(const AttemptRecord& a) {
  DROVER_RETURN_IF_ERROR(CheckBatch());
  Statement::Use u(insert_started_attempt);
  u.Bind(1, AsStored(a.id)).Bind(2, a.job_id).Bind(3, a.task).Bind(4, int64_t{a.number});
  u.Bind(5, a.worker).Bind(6, a.started_ms).Bind(7, a.task_index);
  return Context(u.Run(), "attempt", a.id);
}

Status Store::Impl::InsertEndedNow(const EndedRecord& e) {
  DROVER_RETURN_IF_ERROR(CheckBatch());
  Statement::Use u(insert_ended_attempt);
  BindEnded(u, e, 0);
  return Context(u.Run(), "attempt", e.attempt.id);
}

Status Store::Impl::InsertEndedRows(size_t pos, size_t n) {
  if (n == 1) return InsertEndedNow(ended_slots.records[ended_order[pos]]);
  DROVER_RETURN_IF_ERROR(CheckBatch());
  Statement::Use u(insert_ended_rows);
  for (size_t r = 0; r < n; ++r) {
    BindEnded(u, ended_slots.records[ended_order[pos + r]],
              static_cast<int>(r) * kEndedCols);
  }
  Status s = u.Run();
  if (s.ok()) return s;
  return Context(std::move(s), "attempts",
                 ended_slots.records[ended_order[pos]].attempt.id);
}

Status Store::Impl::WriteEnded() {
  // In the order of their ids: the table's rows and its index's entries
  // then go in mostly at the end of their B-trees, where SQLite does not
  // search from the root for each.
  const size_t from = ended_order.size();
  for (size_t i = ended_listed; i < ended_slots.used; ++i) {
    ended_order.push_back(static_cast<uint32_t>(i));
  }
  ended_listed = ended_slots.used;
  std::sort(ended_order.begin() + static_cast<ptrdiff_t>(from), ended_order.end(),
            [this](uint32_t a, uint32_t b) {
              return ended_slots.records[a].attempt.id <
                     ended_slots.records[b].attempt.id;
            });
  // As WriteDispatches: every write goes on after one that failed for want
  // of room (journaled, redone with the batch). Another failure stops them
  // and leaves its rows unwritten, so that the commit tries them again and
  // fails the batch rather than commit it without them.
  Status result;
  while (ended_written < ended_order.size()) {
    // kEndedRows to a statement, the rest one a statement: each statement
    // writes all its rows or none.
    const size_t pos = ended_written;
    const size_t n = ended_order.size() - pos >= kEndedRows ? kEndedRows : 1;
    Status s = InsertEndedRows(pos, n);
    if (!s.ok() && s.code() != StatusCode::kUnavailable) return s;
    if (Journals(s))
      journal.push_back([this, pos, n] { return InsertEndedRows(pos, n); });
    ended_written = pos + n;
    if (!s.ok() && result.ok()) result = std::move(s);
  }
  return result;
}

Status Store::Impl::CheckDispatchLog() {
  // A row that is not what drover writes (a file changed by hand, or by
  // another program) would stop every read of what runs: it is named.
  constexpr const char* kChecks[] = {
      "SELECT id FROM dispatches WHERE json_valid(attempts) = 0 OR json_type(attempts) "
      "!= "
      "'array' LIMIT 1",
      "SELECT d.id FROM dispatches d WHERE EXISTS (SELECT 1 FROM json_each(d.attempts) e "
      "WHERE json_type(e.value) != 'array' OR json_array_length(e.value) != 7 OR "
      "json_type(e.value, '$[0]') != 'integer' OR json_type(e.value, '$[1]') != 'text' "
      "OR "
      "json_type(e.value, '$[2]') != 'text' OR json_type(e.value, '$[3]') != 'integer' "
      "OR "
      "json_type(e.value, '$[4]') != 'text' OR json_type(e.value, '$[5]') != 'integer' "
      "OR "
      "json_type(e.value, '$[6]') != 'integer') LIMIT 1",
  };
  for (const char* sql : kChecks) {
    Statement check;
    DROVER_RETURN_IF_ERROR(check.Prepare(db.get(), sql, "check dispatches"));
    Statement::Use u(check);
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (*row) {
      return FailedPrecondition(
          "the dispatch log's row " + std::to_string(u.Int(0)) +
          " (table dispatches) is not a JSON array of [id, job_id, task, number, worker, "
          "started_ms, task_idx] arrays, as drover writes it (docs/state.md, "
          "\"dispatches\"); restore the file from a copy, or delete the row (its "
          "attempts "
          "then count as never dispatched)");
    }
  }
  return Status::Ok();
}

Status Store::Impl::LoadInFlight() {
  ForgetInFlight();
  DROVER_RETURN_IF_ERROR(CheckDispatchLog());
  {
    Statement::Use u(max_attempt_id);
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    highest_id = *row ? FromStored(u.Int(0)) : 0;
  }
  {
    Statement::Use u(load_in_flight);
    for (;;) {
      Result<bool> row = u.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      InFlight f;
      f.attempt.id = FromStored(u.Int(0));
      f.attempt.job_id = u.Text(1);
      f.attempt.task = u.Text(2);
      f.attempt.number = static_cast<uint32_t>(u.Int(3));
      f.attempt.worker = u.Text(4);
      f.attempt.started_ms = u.Int(5);
      f.attempt.task_index = u.Int(6);
      f.dispatch = u.Int(7);
      ++dispatch_open[f.dispatch];
      in_flight.emplace(f.attempt.id, std::move(f));
    }
  }
  Statement::Use u(finished_dispatches);
  for (;;) {
    Result<bool> row = u.Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
    dispatch_done.push_back(u.Int(0));
  }
}

bool Store::Impl::Loggable(const AttemptRecord& a) const {
  return !a.finished && a.finished_ms == 0 && IsUnset(a.outcome);
}

Result<bool> Store::Impl::AttemptIdUsed(uint64_t id) {
  // The coordinator's ids only grow: past every id this store has seen
  // (those in flight among them), none is used, and nothing is asked.
  if (id > highest_id) {
    highest_id = id;
    return false;
  }
  if (in_flight.count(id)) return true;
  DROVER_RETURN_IF_ERROR(WriteForRead());  // an ended attempt's row, not yet written
  Statement::Use u(attempt_id_used);
  u.Bind(1, AsStored(id));
  return u.Step();
}

void Store::Impl::Dispatch(const AttemptRecord& a) {
  in_flight.emplace(a.id, InFlight{a, 0});
  undispatched.push_back(a.id);
}

std::optional<Result<bool>> Store::Impl::EndLogged(uint64_t id, const std::string& worker,
                                                   const AttemptOutcome& outcome,
                                                   int64_t finished_ms,
                                                   const std::string& outputs_json,
                                                   std::optional<uint64_t> stands) {
  auto it = in_flight.find(id);
  if (it == in_flight.end()) return std::nullopt;
  const size_t i = ended_slots.Next();
  EndedRecord& e = ended_slots.records[i];
  // Moved, not copied (a task ends here); given back if the write fails.
  e.attempt = std::move(it->second.attempt);
  if (!worker.empty()) e.attempt.worker = worker;
  e.attempt.finished = true;
  e.attempt.finished_ms = finished_ms;
  e.attempt.outcome = outcome;
  e.outputs_json = outputs_json;
  e.stands = stands;
  Status s;
  if (!in_batch || replaying) {
    // On its own: written now, and not kept.
    s = InsertEndedNow(e);
    ended_slots.used = i;
  }
  // Else written with the batch's other ended attempts (WriteEnded).
  if (!s.ok() && s.code() != StatusCode::kUnavailable) {
    AttemptRecord& back = it->second.attempt;
    back = std::move(e.attempt);
    back.finished = false;
    back.finished_ms = 0;
    back.outcome = AttemptOutcome();
    return Result<bool>(s);
  }
  const int64_t dispatch = it->second.dispatch;
  in_flight.erase(it);
  Ended(dispatch);
  if (!in_batch) {
    // On its own: the row is written; the log row goes now too.
    Status w = WriteDispatches();
    if (!w.ok()) return Result<bool>(w);
  }
  if (!s.ok()) return Result<bool>(s);
  return Result<bool>(true);
}

}  // namespace drover::store
