// How the CLI shows jobs and tasks: the summary table, the JSON document of
// `drover status --output json`, and the per-task lines of `drover run` and
// `drover submit --wait/--follow`. The one place that turns a task state
// into what a person reads: the tables and the JSON show the state's name
// (core/dag/states.h), the task lines a tag (TaskTag).
#ifndef DROVER_TOOLS_CLI_RENDER_H_
#define DROVER_TOOLS_CLI_RENDER_H_

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/dag/states.h"
#include "core/protocol/codec.h"
#include "core/store/store.h"

namespace drover::cli {

// "1 task", "3 tasks", "0 tasks": a count with its noun in agreement.
// `many` defaults to `one` + "s".
std::string Plural(uint64_t n, std::string_view one, std::string_view many = {});

// The task states that `drover status --state` keeps: a comma-separated
// list of state names ("failed,blocked"). An empty set keeps every task.
// An unknown name is an error naming it and the valid ones.
using StateFilter = std::set<dag::TaskState>;
Result<StateFilter> ParseStateFilter(std::string_view text);
bool Keeps(const StateFilter& filter, std::string_view state_name);

// The last `max_lines` lines of `text` (at most `max_bytes` of its end,
// cut at a line start); a missing final newline is not an extra line.
std::string LastLines(std::string_view text, size_t max_lines, size_t max_bytes = 4096);
// The same of a file's end, reading at most `max_bytes`; "" when the file
// is missing or empty.
std::string FileTail(const std::filesystem::path& path, size_t max_lines,
                     size_t max_bytes = 4096);
// How many stderr lines the failure summaries show under a failed task,
// and for how many failed tasks at most (the rest: `drover logs`).
inline constexpr size_t kStderrTailLines = 10;
// A brief table lists at most this many tasks (a screenful).
inline constexpr size_t kBriefTaskRows = 30;
inline constexpr size_t kStderrTailTasks = 5;
// Prints `tail` (LastLines' result) under a task row, each line indented
// with "  | ", as make and CI runners show a failed step's output.
void PrintTail(std::FILE* out, std::string_view tail);

// Prints the job's header line and its task table. With `brief`, a job with
// many tasks shows only the tasks that did not succeed (up to a screenful)
// and a count of the rest. `filter` keeps only tasks in those states (the
// header still counts every task). With `logs` (the store whose LogPath
// holds the captured output), the first kStderrTailTasks failed tasks show
// the end of their last attempt's stderr under their row. With `counted`
// (Store::TaskStateCounts of the whole job), `tasks` need only hold those
// that did not succeed (Store::UnsuccessfulTasks): a job of a million tasks
// is summed up without reading a million rows.
void PrintJobTable(
    std::FILE* out, const store::JobRecord& job,
    const std::vector<store::TaskRecord>& tasks, bool brief,
    const StateFilter& filter = {}, const store::Store* logs = nullptr,
    const std::vector<std::pair<std::string, uint64_t>>* counted = nullptr);

// The JSON document of `drover status --output json` (docs/operations.md).
std::string JobJson(const store::JobRecord& job,
                    const std::vector<store::TaskRecord>& tasks);

// The tag that starts a task's line: "ok", "FAILED", "retry", "cancel",
// "blocked", "skipped", "start" (running); empty for a state that has no
// line of its own (waiting, ready).
std::string_view TaskTag(dag::TaskState s);

// The line of a TASK-EVENT, "TAG     TASK  DETAIL\n" (the detail: the
// duration of a success, the reason and attempt of a failure, retry or
// cancel, the worker a task started on); empty for a state without a tag.
std::string TaskLine(const wire::TaskEvent& ev);
// The same line appended to *out (a buffer kept from event to event).
void AppendTaskLine(const wire::TaskEvent& ev, std::string* out);

// Who submitted a job, for the line under a job's header: "NAME (key
// KEY)", "key KEY" for a key without a name, NAME alone for a name
// without a key (the coordinator's own submitter, `schedule`), "" for
// neither.
std::string SubmitterText(const std::string& key, const std::string& name);

// `drover outputs`: the outputs of `tasks` of job `job_id`. As text, one
// task's as KEY=VALUE lines (KEY<<DELIMITER ... for a value with a line
// break), the $DROVER_OUTPUT syntax; several tasks' each under a "# NAME"
// line. As JSON, {"job": ID, "tasks": [{"name", "state", "outputs"}]}.
void PrintOutputs(std::FILE* out, const std::string& job_id,
                  const std::vector<const store::TaskRecord*>& tasks, bool json);

// "1.25s" for a duration in microseconds; "-" for none.
std::string Micros(int64_t us);

}  // namespace drover::cli

#endif  // DROVER_TOOLS_CLI_RENDER_H_
