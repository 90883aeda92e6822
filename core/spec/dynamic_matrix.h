// Dynamic matrices (docs/spec.md, "Dynamic matrix"): a matrix key whose
// value is one reference to an upstream output,
//
//   matrix: {shard: "${tasks.plan.outputs.shards}"}
//
// has its values only once `plan` has succeeded. The loader gives such a
// task ONE instance, a placeholder named like the task, that carries a
// DynamicMatrix; the coordinator expands it (core/coordinator/fanout.h)
// when the placeholder's needs have succeeded: it parses the output with
// ParseMatrixValues and builds the instances with ExpandDynamic, exactly
// as the loader builds a static matrix's.
#ifndef DROVER_CORE_SPEC_DYNAMIC_MATRIX_H_
#define DROVER_CORE_SPEC_DYNAMIC_MATRIX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "core/spec/job_spec.h"
#include "core/spec/outputs.h"

namespace drover::spec {

class CompiledTask;  // task_kind.h

// The values of one matrix key and the JSON form of each (typed as a
// static matrix's: a JSON string value is a string, a number or a boolean
// is itself).
struct MatrixValues {
  std::vector<std::string> values;
  std::vector<std::string> json;
};

// What a dynamic task's placeholder keeps to build its instances. Shared
// (read-only) by the placeholder and its copies.
struct DynamicMatrix {
  std::shared_ptr<const CompiledTask> compiled;
  // Every key of the matrix, in file order, and the values of the static
  // ones (a dynamic key's lists are empty here).
  std::vector<std::string> keys;
  std::vector<MatrixValues> values;
  // The dynamic keys: the index of each in `keys` and the reference that
  // gives its values. A reference's `first` (or `pick`, for one instance
  // of a static matrix task) is the upstream instance it reads.
  struct Source {
    size_t key = 0;
    OutputRef ref;
  };
  std::vector<Source> sources;
  // The task's other `${tasks...}` references (its templates' holes past
  // the matrix keys), shared by its instances; null when it has none.
  std::shared_ptr<const DeferredRender> deferred;
};

// The values a dynamic key takes from upstream output `text`: a JSON array
// of strings, numbers and booleans, each usable in an instance name (no
// control characters; no ',' when `several_keys`; no duplicates). Fails
// with kInvalidArgument saying what is wrong: not JSON, not an array,
// empty, a nested or null item, a bad or duplicate value. O(size of text).
Result<MatrixValues> ParseMatrixValues(std::string_view text, bool several_keys);

// The number of instances `placeholder` expands to with `dynamic` (one
// MatrixValues per DynamicMatrix::sources entry): the product of every
// key's number of values, saturating at UINT64_MAX.
uint64_t DynamicInstanceCount(const TaskSpec& placeholder,
                              const std::vector<MatrixValues>& dynamic);

// The instances of `placeholder` (a TaskSpec with `dynamic` set), in the
// order a static matrix would give them (the last key varies fastest), each
// named, rendered and fingerprinted as the loader does; their `needs` and
// placement are the placeholder's. O(instances * size of one).
std::vector<TaskSpec> ExpandDynamic(const TaskSpec& placeholder,
                                    const std::vector<MatrixValues>& dynamic);

// What the placeholder waits for, for `drover status`: "fan-out waits for
// plan's output shards" (several sources are joined with " and ").
std::string FanoutWaitReason(const TaskSpec& placeholder);

// The upstream instance a source reads: its pick, else its first.
inline uint32_t SourceIndex(const OutputRef& ref) {
  return ref.pick ? *ref.pick : ref.first;
}

}  // namespace drover::spec

#endif  // DROVER_CORE_SPEC_DYNAMIC_MATRIX_H_
