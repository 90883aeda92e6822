// Matrix expansion: RawJob -> JobSpec. Runs only on a job without errors.
// Linear in the output: every instance is built once, in place, and the
// values it shares with its siblings are computed once per task.
#include <algorithm>
#include <unordered_map>

#include "core/spec/fingerprint.h"
#include "core/spec/raw_job.h"
#include "core/spec/task_kind.h"

namespace drover::spec::internal {
JobSpec Expand(RawJob&& job, const std::string& file) {
  JobSpec spec;
  spec.name = std::move(job.name);
  spec.file = file;
  spec.fail_fast = job.fail_fast;
  spec.priority = job.priority;
  spec.schedule = std::move(job.schedule);
  spec.plugins = std::move(job.plugins);
  spec.pools = std::move(job.pools);
  spec.services = std::move(job.services);
  std::unordered_map<std::string_view, uint64_t> service_fingerprints;
  for (const ServiceDecl& service : spec.services) {
    service_fingerprints[service.name] = service.Fingerprint();
  }

  // Instances of task i are spec.tasks[first[i] .. first[i] + count[i]).
  std::vector<uint32_t> first(job.tasks.size());
  std::vector<uint32_t> count(job.tasks.size());
  uint64_t total = 0;
  for (size_t i = 0; i < job.tasks.size(); ++i) {
    first[i] = static_cast<uint32_t>(total);
    count[i] = static_cast<uint32_t>(job.tasks[i].instances);
    total += job.tasks[i].instances;
  }
  spec.tasks.reserve(total);

  for (RawTask& task : job.tasks) {
    TaskSpec proto;
    proto.base_name = task.name;
    proto.backend = task.backend;
    proto.timeout = task.timeout;
    proto.kill_grace = task.kill_grace;
    proto.retries = task.retries;
    proto.retry_backoff = task.retry_backoff;
    // Delays double from retry_backoff; a first delay above the usual cap
    // raises the cap rather than being cut short by it.
    proto.retry_backoff_max = std::max(proto.retry_backoff_max, proto.retry_backoff);
    proto.output_limit = task.output_limit;
    proto.cache = task.cache;
    proto.inputs = task.inputs;
    for (InputDecl& input : proto.inputs) input.where.file = file;
    proto.on = task.on;
    proto.slots = task.slots;
    proto.services = task.services;
    if (!task.services.empty()) {
      // Folds the declarations' fingerprints in the services' (sorted)
      // order, so that it is as stable as each of them.
      uint64_t h = 0xcbf29ce484222325ull;
      for (const std::string& name : task.services) {
        h = (h ^ service_fingerprints.at(name)) * 0x100000001b3ull;
      }
      proto.services_fingerprint = h;
    }
    for (const NeedRef& need : task.needs) {
      for (uint32_t k = 0; k < count[need.target]; ++k) {
        proto.needs.push_back(first[need.target] + k);
      }
    }
    proto.where.file = file;
    proto.where.line = task.where.line;
    proto.where.column = task.where.column;

    const size_t keys = task.matrix_keys.size();
    std::vector<size_t> odometer(keys, 0);
    // Past the matrix keys, each `${tasks...}` reference stands for its
    // own text at load (outputs.h): as a value and as a JSON string.
    const size_t refs = task.output_refs.size();
    std::vector<std::string> ref_json(refs);
    std::vector<const std::string*> values(keys + refs);
    std::vector<const std::string*> json(keys +
                                         refs);  // the JSON form of each of `values`
    for (size_t k = 0; k < keys; ++k) {
      values[k] = &task.matrix_values[k][0];
      json[k] = &task.matrix_json[k][0];
    }
    std::shared_ptr<DeferredRender> deferred;
    if (refs > 0) {
      deferred = std::make_shared<DeferredRender>();
      deferred->compiled = task.compiled;
      deferred->matrix_keys = keys;
      deferred->refs = task.output_refs;
      for (size_t r = 0; r < refs; ++r) {
        OutputRef& ref = deferred->refs[r];
        ref.first = first[ref.target];
        ref.count = count[ref.target];
        if (!ref.select.empty()) ref.pick = ref.first + ref.select_offset;
        AppendJsonString(ref.text, &ref_json[r]);
        values[keys + r] = &deferred->refs[r].text;
        json[keys + r] = &ref_json[r];
      }
      proto.deferred = deferred;
    }

    for (uint64_t n = 0; n < task.instances; ++n) {
      const bool last = n + 1 == task.instances;
      // The last instance takes the prototype's buffers instead of copying.
      TaskSpec instance = last ? std::move(proto) : proto;
      if (keys == 0) {
        instance.name = task.name;
      } else {
        size_t size = task.name.size() + 2;
        for (size_t k = 0; k < keys; ++k) {
          size += task.matrix_keys[k].size() + values[k]->size() + 2;
        }
        instance.name.reserve(size);
        instance.name = task.name;
        instance.name += '[';
        instance.matrix.reserve(keys);
        for (size_t k = 0; k < keys; ++k) {
          if (k > 0) instance.name += ',';
          instance.name += task.matrix_keys[k];
          instance.name += '=';
          instance.name += *values[k];
          instance.matrix.emplace_back(task.matrix_keys[k], *values[k]);
        }
        instance.name += ']';
      }
      // The kind's payload (and, for the built-in ones, its fingerprint);
      // any other kind's fingerprint is the generic one.
      task.compiled->Render(Instance(values, json), &instance);
      if (deferred) {
        instance.matrix_json.reserve(keys);
        for (size_t k = 0; k < keys; ++k) instance.matrix_json.push_back(*json[k]);
      }
      if (instance.fingerprint == 0) instance.fingerprint = TaskFingerprint(instance);
      spec.tasks.push_back(std::move(instance));

      // Advance: the last key varies fastest, like nested loops written in
      // key order.
      for (size_t k = keys; k-- > 0;) {
        if (++odometer[k] < task.matrix_values[k].size()) {
          values[k] = &task.matrix_values[k][odometer[k]];
          json[k] = &task.matrix_json[k][odometer[k]];
          break;
        }
        odometer[k] = 0;
        values[k] = &task.matrix_values[k][0];
        json[k] = &task.matrix_json[k][0];
      }
    }
    task = RawTask();  // done with it: keep the peak low on large files
  }
  return spec;
}

}  // namespace drover::spec::internal
