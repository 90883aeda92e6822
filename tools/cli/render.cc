#include "tools/cli/render.h"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "core/base/clock.h"
#include "core/base/outputs.h"

namespace drover::cli {
namespace {

constexpr size_t kBriefRows = 30;

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
  if (t.reason.empty()) return "-";
  if (t.reason == "ok") return t.exit_code >= 0 ? "0" : "ok";
  return t.detail.empty() ? t.reason : t.detail;
}

}  // namespace

std::string_view TaskTag(dag::TaskState s) {
  switch (s) {
    case dag::TaskState::kSucceeded:
      return "ok";
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
  const auto state = dag::ParseTaskState(ev.state());
  if (!state) return "";
  const std::string_view tag = TaskTag(*state);
  if (tag.empty()) return "";
  std::string detail;
  switch (*state) {
    case dag::TaskState::kSucceeded:
      detail = Micros(static_cast<int64_t>(ev.wall_us()));
      break;
    case dag::TaskState::kFailed:
    case dag::TaskState::kRetryWait:
    case dag::TaskState::kCancelled:
      detail = ev.detail() + " (attempt " + std::to_string(ev.attempt()) + ")";
      break;
    case dag::TaskState::kRunning:
      if (!ev.worker().empty()) detail = "on " + ev.worker();
      break;
    default:
      break;
  }
  char head[64];
  std::snprintf(head, sizeof head, "%-7.*s ", static_cast<int>(tag.size()), tag.data());
  return head + ev.task() + (detail.empty() ? "" : "  " + detail) + "\n";
}

std::string Micros(int64_t us) {
  if (us <= 0) return "-";
  return FormatDuration(std::chrono::microseconds(us));
}

std::string SubmitterText(const std::string& key, const std::string& name) {
  if (key.empty()) return "";
  return name.empty() ? "key " + key : name + " (key " + key + ")";
}

void PrintJobTable(std::FILE* out, const store::JobRecord& job,
                   const std::vector<store::TaskRecord>& tasks, bool brief) {
  std::map<std::string, size_t> by_state;
  for (const auto& t : tasks) ++by_state[t.state];
  std::string counts;
  for (const auto& [state, n] : by_state) {
    if (!counts.empty()) counts += ", ";
    counts += std::to_string(n) + " " + state;
  }
  std::fprintf(out, "job %s (%s): %s, %zu tasks: %s\n", job.id.c_str(), job.name.c_str(),
               job.state.c_str(), tasks.size(), counts.c_str());
  if (const std::string by = SubmitterText(job.submitter_key, job.submitter_name); !by.empty()) {
    std::fprintf(out, "submitted by %s\n", by.c_str());
  }

  std::vector<const store::TaskRecord*> rows;
  for (const auto& t : tasks) {
    const bool succeeded = dag::ParseTaskState(t.state) == dag::TaskState::kSucceeded;
    if (!brief || tasks.size() <= kBriefRows || !succeeded) rows.push_back(&t);
  }
  const size_t hidden_ok = tasks.size() - rows.size();
  size_t cut = 0;
  if (brief && rows.size() > kBriefRows) {
    cut = rows.size() - kBriefRows;
    rows.resize(kBriefRows);
  }
  size_t width = 4;
  for (const auto* t : rows) width = std::max(width, t->name.size());
  width = std::min<size_t>(width, 60);
  std::fprintf(out, "%-*s  %-10s  %8s  %9s  %s\n", static_cast<int>(width), "TASK",
               "STATUS", "ATTEMPTS", "DURATION", "EXIT/REASON");
  for (const auto* t : rows) {
    std::fprintf(out, "%-*s  %-10s  %8u  %9s  %s\n", static_cast<int>(width),
                 t->name.c_str(), t->state.c_str(), t->attempts, Micros(t->wall_us).c_str(),
                 ExitOrReason(*t).c_str());
  }
  if (cut) std::fprintf(out, "... and %zu more tasks that did not succeed\n", cut);
  if (hidden_ok) std::fprintf(out, "... and %zu succeeded tasks (drover status shows all)\n", hidden_ok);
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

std::string JobJson(const store::JobRecord& job, const std::vector<store::TaskRecord>& tasks) {
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
    j["signal"] = t.signal ? nlohmann::ordered_json(t.signal) : nlohmann::ordered_json(nullptr);
    j["detail"] = t.detail;
    j["duration_us"] = t.wall_us;
    j["worker"] = t.worker;
    if (t.result_json.empty()) {
      j["result"] = nullptr;
    } else {
      auto parsed = nlohmann::ordered_json::parse(t.result_json, nullptr, false);
      j["result"] = parsed.is_discarded() ? nlohmann::ordered_json(t.result_json) : parsed;
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
