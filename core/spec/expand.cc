// Matrix expansion: RawJob -> JobSpec. Runs only on a job without errors.
// Linear in the output: every instance is built once, in place, and the
// values it shares with its siblings are computed once per task.
#include <algorithm>
#include <unordered_map>

#include "core/spec/dynamic_matrix.h"
#include "core/spec/fingerprint.h"
#include "core/spec/raw_job.h"
#include "core/spec/task_kind.h"

namespace drover::spec::internal {
void AppendInstances(std::string_view task, const std::vector<std::string>& keys,
                     const std::vector<const std::vector<std::string>*>& matrix_values,
                     const std::vector<const std::vector<std::string>*>& matrix_json,
                     const CompiledTask& compiled, const DeferredRender* deferred,
                     uint64_t count, TaskSpec proto, std::vector<TaskSpec>* out) {
  const size_t n_keys = keys.size();
  std::vector<size_t> odometer(n_keys, 0);
  // Past the matrix keys, each `${tasks...}` reference stands for its
  // own text at load (outputs.h): as a value and as a JSON string.
  const size_t refs = deferred ? deferred->refs.size() : 0;
  std::vector<std::string> ref_json(refs);
  std::vector<const std::string*> values(n_keys + refs);
  std::vector<const std::string*> json(n_keys +
                                       refs);  // the JSON form of each of `values`
  for (size_t k = 0; k < n_keys; ++k) {
    values[k] = &(*matrix_values[k])[0];
    json[k] = &(*matrix_json[k])[0];
  }
  for (size_t r = 0; r < refs; ++r) {
    AppendJsonString(deferred->refs[r].text, &ref_json[r]);
    values[n_keys + r] = &deferred->refs[r].text;
    json[n_keys + r] = &ref_json[r];
  }

  for (uint64_t n = 0; n < count; ++n) {
    const bool last = n + 1 == count;
    // The last instance takes the prototype's buffers instead of copying.
    TaskSpec instance = last ? std::move(proto) : proto;
    if (n_keys == 0) {
      instance.name = task;
    } else {
      size_t size = task.size() + 2;
      for (size_t k = 0; k < n_keys; ++k) size += keys[k].size() + values[k]->size() + 2;
      instance.name.reserve(size);
      instance.name = task;
      instance.name += '[';
      instance.matrix.reserve(n_keys);
      for (size_t k = 0; k < n_keys; ++k) {
        if (k > 0) instance.name += ',';
        instance.name += keys[k];
        instance.name += '=';
        instance.name += *values[k];
        instance.matrix.emplace_back(keys[k], *values[k]);
      }
      instance.name += ']';
    }
    // The kind's payload (and, for the built-in ones, its fingerprint);
    // any other kind's fingerprint is the generic one.
    compiled.Render(Instance(values, json), &instance);
    if (deferred) {
      instance.matrix_json.reserve(n_keys);
      for (size_t k = 0; k < n_keys; ++k) instance.matrix_json.push_back(*json[k]);
    }
    if (instance.fingerprint == 0) instance.fingerprint = TaskFingerprint(instance);
    out->push_back(std::move(instance));

    // Advance: the last key varies fastest, like nested loops written in
    // key order.
    for (size_t k = n_keys; k-- > 0;) {
      if (++odometer[k] < matrix_values[k]->size()) {
        values[k] = &(*matrix_values[k])[odometer[k]];
        json[k] = &(*matrix_json[k])[odometer[k]];
        break;
      }
      odometer[k] = 0;
      values[k] = &(*matrix_values[k])[0];
      json[k] = &(*matrix_json[k])[0];
    }
  }
}

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
  // Read before the loop: it frees each task once expanded.
  std::vector<bool> dynamic_task(job.tasks.size());
  for (size_t i = 0; i < job.tasks.size(); ++i) {
    dynamic_task[i] = !job.tasks[i].dynamic_keys.empty();
  }

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

    std::shared_ptr<DeferredRender> deferred;
    if (!task.output_refs.empty()) {
      deferred = std::make_shared<DeferredRender>();
      deferred->compiled = task.compiled;
      deferred->matrix_keys = task.matrix_keys.size();
      deferred->refs = task.output_refs;
      for (OutputRef& ref : deferred->refs) {
        ref.first = first[ref.target];
        ref.count = count[ref.target];
        if (!ref.select.empty()) ref.pick = ref.first + ref.select_offset;
        // A dynamic task's outputs are a list of its instances, known
        // when it is expanded (core/coordinator/fanout.h sets `indices`).
        ref.dynamic = dynamic_task[ref.target];
      }
      proto.deferred = deferred;
    }
    std::vector<const std::vector<std::string>*> values(task.matrix_keys.size());
    std::vector<const std::vector<std::string>*> json(task.matrix_keys.size());
    for (size_t k = 0; k < values.size(); ++k) {
      values[k] = &task.matrix_values[k];
      json[k] = &task.matrix_json[k];
    }
    if (task.dynamic_keys.empty()) {
      AppendInstances(task.name, task.matrix_keys, values, json, *task.compiled,
                      deferred.get(), task.instances, std::move(proto), &spec.tasks);
    } else {
      // One placeholder, rendered with each dynamic key standing for its
      // reference's text (as an output reference does at load): its
      // summary says what it will run.
      auto dynamic = std::make_shared<DynamicMatrix>();
      dynamic->compiled = task.compiled;
      dynamic->keys = task.matrix_keys;
      dynamic->values.resize(task.matrix_keys.size());
      for (size_t k = 0; k < task.matrix_keys.size(); ++k) {
        dynamic->values[k].values = task.matrix_values[k];
        dynamic->values[k].json = task.matrix_json[k];
      }
      for (DynamicKey& d : task.dynamic_keys) {
        d.ref.first = first[d.ref.target];
        d.ref.count = count[d.ref.target];
        if (!d.ref.select.empty()) d.ref.pick = d.ref.first + d.ref.select_offset;
        dynamic->values[d.key] = MatrixValues();
        dynamic->sources.push_back({d.key, std::move(d.ref)});
      }
      dynamic->deferred = deferred;
      AppendInstances(task.name, task.matrix_keys, values, json, *task.compiled,
                      deferred.get(), 1, std::move(proto), &spec.tasks);
      TaskSpec& placeholder = spec.tasks.back();
      placeholder.name = task.name;
      placeholder.matrix.clear();
      placeholder.matrix_json.clear();
      placeholder.dynamic = std::move(dynamic);
    }
    task = RawTask();  // done with it: keep the peak low on large files
  }
  return spec;
}

}  // namespace drover::spec::internal
