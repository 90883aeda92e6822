#include "tools/cli/render.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/base/clock.h"
#include "core/base/outputs.h"

namespace drover::cli {
namespace {

// One line of a value in a table: line breaks shown as \n, long ones cut.
std::string OneLine(const std::string& value) {
  constexpr size_t kShown = 60;
  std::string out;
  for (char c : value) {
    if (out.size() >= kShown) {
      out += "...";
      break;
    }
    if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

nlohmann::ordered_json OutputsJson(const std::string& outputs_json) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [k, v] : OutputsFromJson(outputs_json).value_or(Outputs())) j[k] = v;
  return j;
}

std::string ExitOrReason(const store::TaskRecord& t) {
  // A dynamic task's placeholder says what its fan-out waits for.
  if (t.reason.empty() && !t.pending_reason.empty() &&
      dag::ParseTaskState(t.state) == dag::TaskState::kWaiting) {
    return "waiting: " + t.pending_reason;
  }
  // No attempt ended; a cached task says where its result came from.
  if (t.reason.empty()) return t.detail.empty() ? "-" : t.detail;
  if (t.reason == "ok") return t.exit_code >= 0 ? "0" : "ok";
  return t.detail.empty() ? t.reason : t.detail;
}

}  // namespace

std::string Plural(uint64_t n, std::string_view one, std::string_view many) {
  std::string out = std::to_string(n) + " ";
  if (n == 1) return out.append(one);
  if (many.empty()) return out.append(one).append("s");
  return out.append(many);
}

Result<StateFilter> ParseStateFilter(std::string_view text) {
  StateFilter filter;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view name = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (name.empty()) continue;
    const auto state = dag::ParseTaskState(name);
    if (!state) {
      return InvalidArgument("unknown task state '" + std::string(name) +
                             "' (states: waiting, ready, running, retry-wait, succeeded, "
                             "cached, failed, blocked, skipped, cancelled)");
    }
    filter.insert(*state);
  }
  return filter;
}

bool Keeps(const StateFilter& filter, std::string_view state_name) {
  if (filter.empty()) return true;
  const auto state = dag::ParseTaskState(state_name);
  return state && filter.count(*state) > 0;
}

std::string LastLines(std::string_view text, size_t max_lines, size_t max_bytes) {
  if (text.size() > max_bytes) {
    // A byte cut lands mid-line: drop that partial first line.
    text.remove_prefix(text.size() - max_bytes);
    const size_t nl = text.find('\n');
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
  const size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  std::string out;
  for (size_t i = first; i < lines.size(); ++i) out.append(lines[i]).push_back('\n');
  return out;
}

std::string FileTail(const std::filesystem::path& path, size_t max_lines,
                     size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size <= 0) return "";
  const std::streamoff from =
      std::max<std::streamoff>(0, size - static_cast<std::streamoff>(max_bytes));
  in.seekg(from);
  std::string text(static_cast<size_t>(size - from), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  // Cut at a line start when the read began mid-file.
  if (from > 0) {
    const size_t nl = text.find('\n');
    text.erase(0, nl == std::string::npos ? text.size() : nl + 1);
  }
  return LastLines(text, max_lines, text.size());
}

void PrintTail(std::FILE* out, std::string_view tail) {
  while (!tail.empty()) {
    const size_t nl = tail.find('\n');
    const std::string_view line = tail.substr(0, nl);
    std::fprintf(out, "  | %.*s\n", static_cast<int>(line.size()), line.data());
    if (nl == std::string_view::npos) break;
    tail.remove_prefix(nl + 1);
  }
}

std::string_view TaskTag(dag::TaskState s) {
  switch (s) {
    case dag::TaskState::kSucceeded:
      return "ok";
    case dag::TaskState::kCached:
      return "cached";
    case dag::TaskState::kFailed:
      return "FAILED";
    case dag::TaskState::kRetryWait:
      return "retry";
    case dag::TaskState::kCancelled:
      return "cancel";
    case dag::TaskState::kBlocked:
      return "blocked";
    case dag::TaskState::kSkipped:
      return "skipped";
    case dag::TaskState::kRunning:
      return "start";
    case dag::TaskState::kWaiting:
    case dag::TaskState::kReady:
      return "";
  }
  return "";
}

std::string TaskLine(const wire::TaskEvent& ev) {
  std::string line;
  AppendTaskLine(ev, &line);
  return line;
}

void AppendTaskLine(const wire::TaskEvent& ev, std::string* out) {
  const auto state = dag::ParseTaskState(ev.state());
  if (!state) return;
  const std::string_view tag = TaskTag(*state);
  if (tag.empty()) return;
  char head[64];
  std::snprintf(head, sizeof head, "%-7.*s ", static_cast<int>(tag.size()), tag.data());
  *out += head;
  *out += ev.task();
  switch (*state) {
    case dag::TaskState::kSucceeded:
      *out += "  ";
      *out += Micros(static_cast<int64_t>(ev.wall_us()));
      break;
    case dag::TaskState::kCached:
      if (!ev.detail().empty()) *out += "  " + ev.detail();  // from which job and attempt
      break;
    case dag::TaskState::kFailed:
    case dag::TaskState::kRetryWait:
    case dag::TaskState::kCancelled:
      *out += "  " + ev.detail() + " (attempt " + std::to_string(ev.attempt()) + ")";
      break;
    case dag::TaskState::kRunning:
      if (!ev.worker().empty()) *out += "  on " + ev.worker();
      break;
    default:
      break;
  }
  out->push_back('\n');
}

std::string Micros(int64_t us) {
  if (us <= 0) return "-";
  return FormatDuration(std::chrono::microseconds(us));
}

std::string SubmitterText(const std::string& key, const std::string& name) {
  // A name without a key is the coordinator's own: `schedule` (scheduled
  // pipelines, docs/operations.md "Schedules").
  if (key.empty()) return name;
  return name.empty() ? "key " + key : name + " (key " + key + ")";
}

void PrintJobTable(std::FILE* out, const store::JobRecord& job,
                   const std::vector<store::TaskRecord>& tasks, bool brief,
                   const StateFilter& filter, const store::Store* logs,
                   const std::vector<std::pair<std::string, uint64_t>>* counted) {
  std::map<std::string, size_t> by_state;
  size_t unrowed = 0;
  if (counted) {
    for (const auto& [state, n] : *counted) by_state[state] += n;
    size_t all = 0;
    for (const auto& [state, n] : by_state) all += n;
    unrowed = all > tasks.size() ? all - tasks.size() : 0;  // not listed
  } else {
    for (const auto& t : tasks) ++by_state[t.state];
    // A running job's tasks that have not left their first state have no
    // row yet (docs/state.md, "tasks"): they are waiting.
    unrowed = job.tasks > tasks.size() ? job.tasks - tasks.size() : 0;
    if (unrowed) by_state["waiting"] += unrowed;
  }
  std::string counts;
  for (const auto& [state, n] : by_state) {
    if (!counts.empty()) counts += ", ";
    counts += std::to_string(n) + " " + state;
  }
  std::fprintf(out, "job %s (%s): %s, %s: %s\n", job.id.c_str(), job.name.c_str(),
               job.state.c_str(), Plural(tasks.size() + unrowed, "task").c_str(),
               counts.c_str());
  if (const std::string by = SubmitterText(job.submitter_key, job.submitter_name);
      !by.empty()) {
    std::fprintf(out, "submitted by %s\n", by.c_str());
  }

  std::vector<const store::TaskRecord*> rows;
  size_t filtered_out = 0;
  for (const auto& t : tasks) {
    if (!Keeps(filter, t.state)) {
      ++filtered_out;
      continue;
    }
    const auto state = dag::ParseTaskState(t.state);
    const bool succeeded = state && dag::IsSuccess(*state);
    if (!brief || tasks.size() <= kBriefTaskRows || !succeeded) rows.push_back(&t);
  }
  size_t hidden_ok = tasks.size() - filtered_out - rows.size();
  size_t cut = 0;
  if (counted) {
    // `tasks` are those that did not succeed, or some of them.
    hidden_ok = by_state["succeeded"] + by_state["cached"];
    const size_t others = unrowed + tasks.size() - hidden_ok;
    if (brief && rows.size() > kBriefTaskRows) rows.resize(kBriefTaskRows);
    cut = others > rows.size() ? others - rows.size() : 0;
    unrowed = 0;
  } else if (brief && rows.size() > kBriefTaskRows) {
    cut = rows.size() - kBriefTaskRows;
    rows.resize(kBriefTaskRows);
  }
  size_t width = 4;
  for (const auto* t : rows) width = std::max(width, t->name.size());
  width = std::min<size_t>(width, 60);
  std::fprintf(out, "%-*s  %-10s  %8s  %9s  %s\n", static_cast<int>(width), "TASK",
               "STATUS", "ATTEMPTS", "DURATION", "EXIT/REASON");
  size_t tails = 0;
  for (const auto* t : rows) {
    std::fprintf(out, "%-*s  %-10s  %8u  %9s  %s\n", static_cast<int>(width),
                 t->name.c_str(), t->state.c_str(), t->attempts,
                 Micros(t->wall_us).c_str(), ExitOrReason(*t).c_str());
    if (logs && t->attempts > 0 && tails < kStderrTailTasks &&
        dag::ParseTaskState(t->state) == dag::TaskState::kFailed) {
      ++tails;
      PrintTail(out, FileTail(logs->LogPath(job.id, t->name, t->attempts, true),
                              kStderrTailLines));
    }
  }
  if (cut) {
    std::fprintf(out, "... and %s that did not succeed\n",
                 Plural(cut, "more task").c_str());
  }
  if (hidden_ok) {
    std::fprintf(out, "... and %s (drover status shows all)\n",
                 Plural(hidden_ok, "succeeded task").c_str());
  }
  if (unrowed && Keeps(filter, "waiting")) {
    std::fprintf(out, "... and %s not started yet\n",
                 Plural(unrowed, "more waiting task").c_str());
  }
  if (filtered_out) {
    std::fprintf(out, "(%s in other states not shown)\n",
                 Plural(filtered_out, "task").c_str());
  }
  // Outputs of the tasks shown, one line each (`drover outputs` has them whole).
  bool header = false;
  for (const auto* t : rows) {
    for (const auto& [k, v] : OutputsFromJson(t->outputs_json).value_or(Outputs())) {
      if (!header) std::fprintf(out, "OUTPUTS\n");
      header = true;
      std::fprintf(out, "  %s  %s=%s\n", t->name.c_str(), k.c_str(), OneLine(v).c_str());
    }
  }
}

std::string JobJson(const store::JobRecord& job,
                    const std::vector<store::TaskRecord>& tasks) {
  nlohmann::ordered_json doc;
  doc["job"] = {{"id", job.id},
                {"name", job.name},
                {"state", job.state},
                {"spec_file", job.spec_file},
                {"created_ms", job.created_ms},
                {"finished_ms", job.finished_ms}};
  // null when the client had no key (docs/security.md).
  auto or_null = [&job](const std::string& s) {
    return job.submitter_key.empty() ? nlohmann::ordered_json(nullptr)
                                     : nlohmann::ordered_json(s);
  };
  doc["job"]["submitter_key"] = or_null(job.submitter_key);
  doc["job"]["submitter_name"] = or_null(job.submitter_name);
  auto& list = doc["tasks"] = nlohmann::ordered_json::array();
  for (const auto& t : tasks) {
    nlohmann::ordered_json j;
    j["name"] = t.name;
    j["status"] = t.state;
    j["attempts"] = t.attempts;
    if (t.reason.empty()) {
      j["exit_code"] = nullptr;
      j["reason"] = nullptr;
    } else {
      j["exit_code"] = (t.reason == "ok" || t.reason == "exit" || t.reason == "signal")
                           ? nlohmann::ordered_json(t.exit_code)
                           : nlohmann::ordered_json(nullptr);
      j["reason"] = t.reason;
    }
    j["signal"] =
        t.signal ? nlohmann::ordered_json(t.signal) : nlohmann::ordered_json(nullptr);
    j["detail"] = t.detail;
    j["pending_reason"] = t.pending_reason.empty() ||
                                  dag::ParseTaskState(t.state) != dag::TaskState::kWaiting
                              ? nlohmann::ordered_json(nullptr)
                              : nlohmann::ordered_json(t.pending_reason);
    j["waiting_in_worker"] = false;  // only a coordinator knows (remote_views.cc)
    j["duration_us"] = t.wall_us;
    j["worker"] = t.worker;
    if (t.result_json.empty()) {
      j["result"] = nullptr;
    } else {
      auto parsed = nlohmann::ordered_json::parse(t.result_json, nullptr, false);
      j["result"] =
          parsed.is_discarded() ? nlohmann::ordered_json(t.result_json) : parsed;
    }
    j["outputs"] = OutputsJson(t.outputs_json);
    list.push_back(std::move(j));
  }
  return doc.dump(2);
}

void PrintOutputs(std::FILE* out, const std::string& job_id,
                  const std::vector<const store::TaskRecord*>& tasks, bool json) {
  if (json) {
    nlohmann::ordered_json doc;
    doc["job"] = job_id;
    auto& list = doc["tasks"] = nlohmann::ordered_json::array();
    for (const auto* t : tasks) {
      list.push_back({{"name", t->name},
                      {"state", t->state},
                      {"outputs", OutputsJson(t->outputs_json)}});
    }
    std::fprintf(out, "%s\n", doc.dump(2).c_str());
    return;
  }
  for (const auto* t : tasks) {
    if (tasks.size() > 1) std::fprintf(out, "# %s\n", t->name.c_str());
    for (const auto& [k, v] : OutputsFromJson(t->outputs_json).value_or(Outputs())) {
      if (v.find('\n') == std::string::npos) {
        std::fprintf(out, "%s=%s\n", k.c_str(), v.c_str());
        continue;
      }
      // A delimiter that is no line of the value.
      std::string delim = "EOF";
      while (("\n" + v + "\n").find("\n" + delim + "\n") != std::string::npos)
        delim += "_";
      std::fprintf(out, "%s<<%s\n%s\n%s\n", k.c_str(), delim.c_str(), v.c_str(),
                   delim.c_str());
    }
  }
}

}  // namespace drover::cli
