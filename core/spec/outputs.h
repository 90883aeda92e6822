// References to upstream outputs (docs/spec.md, "Outputs"):
// `${tasks.NAME.outputs.KEY}`, `${tasks.NAME.result}`, and with a matrix
// task `${tasks.NAME[K=V,...].outputs.KEY}`. They can only be resolved once
// NAME has succeeded, so a task that holds any is rendered twice: at load,
// with each reference standing for its own text (that gives the task's
// summary and its fingerprint: the template is part of the task, the
// resolved value an input), and at dispatch, by the coordinator, with the
// upstream outputs in scope (RenderWithOutputs).
#ifndef DROVER_CORE_SPEC_OUTPUTS_H_
#define DROVER_CORE_SPEC_OUTPUTS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/outputs.h"
#include "core/base/status.h"
#include "core/spec/job_spec.h"
#include "core/spec/template.h"

namespace drover::spec {

class CompiledTask;  // task_kind.h

inline constexpr std::string_view kTasksRefOpen = "${tasks.";

// One distinct reference in a task's templates.
struct OutputRef {
  std::string text;  // as written: "${tasks.plan.outputs.shards}"
  std::string task;  // NAME
  // [K=V,...]: picks one instance of a matrix task; empty: every instance
  // (the value is then a JSON list in instance order).
  EnvList select;
  std::string key;      // the output; "result" for ${tasks.NAME.result}
  internal::Pos where;  // of the value that holds it

  // Set by the load's graph check: the target's index among the tasks as
  // written, and the selected instance's offset among its instances.
  uint32_t target = 0;
  uint64_t select_offset = 0;

  // Set when the job is expanded: the target's instances are
  // JobSpec::tasks[first, first + count), and `pick` the selected one.
  uint32_t first = 0;
  uint32_t count = 0;
  std::optional<uint32_t> pick;
  // The target has a dynamic matrix (dynamic_matrix.h): its value is the
  // JSON list of the outputs of `indices`, its instances, which the
  // coordinator sets when it expands the target (they are not contiguous:
  // the first is the placeholder's index, the others come last in the job).
  bool dynamic = false;
  std::vector<uint32_t> indices;
};

// Parses the reference starting at text[0] ("${tasks." ...). On success
// returns it and sets *length to its length including the closing brace;
// otherwise an error message saying how to write one.
Result<OutputRef> ParseOutputRef(std::string_view text, size_t* length);

// What a task with references keeps for its dispatch-time render; shared
// by its instances.
struct DeferredRender {
  std::shared_ptr<const CompiledTask> compiled;
  size_t matrix_keys = 0;  // references are template keys matrix_keys + k
  std::vector<OutputRef> refs;
};

// The outputs of instance `index` of the job, or nullptr when it has none
// recorded (it has not succeeded).
using OutputsOf = std::function<const Outputs*(uint32_t index)>;

// `ts` (a task with ts.deferred) rendered with the outputs of its
// upstream instances: sets out->payload and out->summary (the fingerprint
// stays the load-time one). Fails with kNotFound naming the reference, the
// task and the keys it has when an upstream instance did not produce the
// key. Cost: O(size of the referenced outputs).
Status RenderWithOutputs(const TaskSpec& ts, const OutputsOf& outputs_of, TaskSpec* out);

}  // namespace drover::spec

#endif  // DROVER_CORE_SPEC_OUTPUTS_H_
