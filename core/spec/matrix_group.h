// A static matrix's instances, held as one: what they share, the matrix's
// axes, and the task's compiled kind, from which instance n is made on
// demand exactly as the loader's expansion would have made it
// (TaskList, job_spec.h). Internal to core/spec.
#ifndef DROVER_CORE_SPEC_MATRIX_GROUP_H_
#define DROVER_CORE_SPEC_MATRIX_GROUP_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/spec/dynamic_matrix.h"
#include "core/spec/job_spec.h"

namespace drover::spec::internal {

struct MatrixGroup {
  // Every field the instances share; name, matrix, matrix_json, payload,
  // summary, fingerprint, artifacts and cwd are left empty. worker_pool is
  // the first instance's (a pool's name is never a template).
  TaskSpec shared;
  bool has_artifacts = false;        // whether the instances upload artifacts
  std::vector<std::string> keys;     // in file order
  std::vector<MatrixValues> values;  // one per key, none empty
  std::shared_ptr<const CompiledTask> compiled;
  uint32_t count = 0;  // the product of the values' sizes

  // Instance n (< count): the last key varies fastest, like nested loops
  // written in key order. O(keys + the task's templates).
  void Make(uint64_t n, TaskSpec* out) const;
  // Its name, "task[k=v,...]". O(size of the name).
  std::string Name(uint64_t n) const;
  // The n whose name is `name`, if any (the lowest one when values are
  // ambiguous). O(size of the values).
  std::optional<uint64_t> Find(std::string_view name) const;
};

// Fills instance->name, matrix and (when `deferred`) matrix_json from the
// values of `keys` (values[k], json[k], k < keys.size(); past them, the
// deferred references' own text), then renders it with `compiled` and
// fingerprints it. Every other field of *instance is the task's.
void FillInstance(std::string_view task, const std::vector<std::string>& keys,
                  const std::vector<const std::string*>& values,
                  const std::vector<const std::string*>& json,
                  const CompiledTask& compiled, bool deferred, TaskSpec* instance);

}  // namespace drover::spec::internal

#endif  // DROVER_CORE_SPEC_MATRIX_GROUP_H_
