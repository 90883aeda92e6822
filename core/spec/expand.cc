// Matrix expansion: RawJob -> JobSpec. Runs only on a job without errors.
// Linear in the output: every instance is built once, in place, and the
// values it shares with its siblings are computed once per task.
#include <algorithm>
#include <functional>
#include <unordered_map>

#include "core/spec/dynamic_matrix.h"
#include "core/spec/fingerprint.h"
#include "core/spec/matrix_group.h"
#include "core/spec/raw_job.h"
#include "core/spec/task_kind.h"

namespace drover::spec::internal {
namespace {

// "task[k=v,...]" (or "task" without keys) into *out.
void AppendName(std::string_view task, const std::vector<std::string>& keys,
                const std::vector<const std::string*>& values, std::string* out) {
  if (keys.empty()) {
    out->assign(task);
    return;
  }
  size_t size = task.size() + 2;
  for (size_t k = 0; k < keys.size(); ++k) size += keys[k].size() + values[k]->size() + 2;
  out->reserve(size);
  out->assign(task);
  *out += '[';
  for (size_t k = 0; k < keys.size(); ++k) {
    if (k > 0) *out += ',';
    *out += keys[k];
    *out += '=';
    *out += *values[k];
  }
  *out += ']';
}

// Past the matrix keys, each `${tasks...}` reference stands for its own
// text at load (outputs.h): as a value and as a JSON string. `ref_json`
// holds the JSON strings the pointers point to.
void AddReferences(const DeferredRender* deferred, std::vector<std::string>* ref_json,
                   std::vector<const std::string*>* values,
                   std::vector<const std::string*>* json) {
  if (deferred == nullptr) return;
  ref_json->assign(deferred->refs.size(), std::string());
  for (size_t r = 0; r < deferred->refs.size(); ++r) {
    AppendJsonString(deferred->refs[r].text, &(*ref_json)[r]);
    values->push_back(&deferred->refs[r].text);
    json->push_back(&(*ref_json)[r]);
  }
}

}  // namespace

void FillInstance(std::string_view task, const std::vector<std::string>& keys,
                  const std::vector<const std::string*>& values,
                  const std::vector<const std::string*>& json, const CompiledTask& compiled,
                  bool deferred, TaskSpec* instance) {
  const size_t n_keys = keys.size();
  AppendName(task, keys, values, &instance->name);
  instance->matrix.clear();
  instance->matrix.reserve(n_keys);
  for (size_t k = 0; k < n_keys; ++k) instance->matrix.emplace_back(keys[k], *values[k]);
  // The kind's payload (and, for the built-in ones, its fingerprint);
  // any other kind's fingerprint is the generic one.
  compiled.Render(Instance(values, json), instance);
  instance->matrix_json.clear();
  if (deferred) {
    instance->matrix_json.reserve(n_keys);
    for (size_t k = 0; k < n_keys; ++k) instance->matrix_json.push_back(*json[k]);
  }
  if (instance->fingerprint == 0) instance->fingerprint = TaskFingerprint(*instance);
}

void AppendInstances(std::string_view task, const std::vector<std::string>& keys,
                     const std::vector<const std::vector<std::string>*>& matrix_values,
                     const std::vector<const std::vector<std::string>*>& matrix_json,
                     const CompiledTask& compiled, const DeferredRender* deferred,
                     uint64_t count, TaskSpec proto, std::vector<TaskSpec>* out) {
  const size_t n_keys = keys.size();
  std::vector<size_t> odometer(n_keys, 0);
  std::vector<const std::string*> values(n_keys);
  std::vector<const std::string*> json(n_keys);  // the JSON form of each of `values`
  for (size_t k = 0; k < n_keys; ++k) {
    values[k] = &(*matrix_values[k])[0];
    json[k] = &(*matrix_json[k])[0];
  }
  std::vector<std::string> ref_json;
  AddReferences(deferred, &ref_json, &values, &json);

  for (uint64_t n = 0; n < count; ++n) {
    const bool last = n + 1 == count;
    // The last instance takes the prototype's buffers instead of copying.
    TaskSpec instance = last ? std::move(proto) : proto;
    FillInstance(task, keys, values, json, compiled, deferred != nullptr, &instance);
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

void MatrixGroup::Make(uint64_t n, TaskSpec* out) const {
  const size_t n_keys = keys.size();
  // Once a thread: made for every instance dispatched, and nothing in
  // FillInstance makes another.
  thread_local std::vector<const std::string*> v;
  thread_local std::vector<const std::string*> j;
  v.resize(n_keys);
  j.resize(n_keys);
  for (size_t k = n_keys; k-- > 0;) {
    const size_t size = values[k].values.size();
    v[k] = &values[k].values[n % size];
    j[k] = &values[k].json[n % size];
    n /= size;
  }
  std::vector<std::string> ref_json;
  AddReferences(shared.deferred.get(), &ref_json, &v, &j);
  *out = shared;
  FillInstance(shared.base_name, keys, v, j, *compiled, shared.deferred != nullptr, out);
}

std::string MatrixGroup::Name(uint64_t n) const {
  std::vector<const std::string*> v(keys.size());
  for (size_t k = keys.size(); k-- > 0;) {
    const size_t size = values[k].values.size();
    v[k] = &values[k].values[n % size];
    n /= size;
  }
  std::string name;
  AppendName(shared.base_name, keys, v, &name);
  return name;
}

std::optional<uint64_t> MatrixGroup::Find(std::string_view name) const {
  const std::string& task = shared.base_name;
  if (keys.empty() || name.size() < task.size() + 2 || name.substr(0, task.size()) != task ||
      name[task.size()] != '[' || name.back() != ']') {
    return std::nullopt;
  }
  // Depth first over the keys in order, each value tried in order: the
  // first full match is the lowest index. A value may hold ',' or '=', so
  // a name is matched against the values rather than split.
  std::optional<uint64_t> found;
  std::function<void(size_t, size_t, uint64_t)> match = [&](size_t k, size_t pos,
                                                            uint64_t n) {
    if (found) return;
    if (k == keys.size()) {
      if (pos + 1 == name.size()) found = n;  // at the closing ']'
      return;
    }
    if (k > 0) {
      if (pos >= name.size() || name[pos] != ',') return;
      ++pos;
    }
    if (name.compare(pos, keys[k].size(), keys[k]) != 0) return;
    pos += keys[k].size();
    if (pos >= name.size() || name[pos] != '=') return;
    ++pos;
    const std::vector<std::string>& list = values[k].values;
    for (size_t i = 0; i < list.size() && !found; ++i) {
      if (name.compare(pos, list[i].size(), list[i]) == 0) {
        match(k + 1, pos + list[i].size(), n * list.size() + i);
      }
    }
  };
  match(0, task.size() + 1, 0);
  return found;
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
  size_t whole = 0;  // instances held whole: tasks without a static matrix
  for (const RawTask& task : job.tasks) {
    whole += task.matrix_keys.empty() || !task.dynamic_keys.empty() ? 1 : 0;
  }
  spec.tasks.reserve(whole);
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
    if (task.dynamic_keys.empty() && !task.matrix_keys.empty()) {
      // Made on demand (TaskList): the matrix's axes, not its instances.
      auto group = std::make_shared<MatrixGroup>();
      group->shared = std::move(proto);
      group->keys = task.matrix_keys;
      group->values.resize(task.matrix_keys.size());
      for (size_t k = 0; k < task.matrix_keys.size(); ++k) {
        group->values[k].values = std::move(task.matrix_values[k]);
        group->values[k].json = std::move(task.matrix_json[k]);
      }
      group->compiled = task.compiled;
      group->count = static_cast<uint32_t>(task.instances);
      // What the kind sets alike for every instance, from the first.
      TaskSpec first_instance;
      group->Make(0, &first_instance);
      group->shared.worker_pool = first_instance.worker_pool;
      group->has_artifacts = !first_instance.artifacts.empty();
      spec.tasks.AppendMatrix(std::move(group));
    } else if (task.dynamic_keys.empty()) {
      std::vector<TaskSpec> one;
      AppendInstances(task.name, task.matrix_keys, values, json, *task.compiled,
                      deferred.get(), 1, std::move(proto), &one);
      spec.tasks.push_back(std::move(one[0]));
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
      std::vector<TaskSpec> one;
      AppendInstances(task.name, task.matrix_keys, values, json, *task.compiled,
                      deferred.get(), 1, std::move(proto), &one);
      TaskSpec& placeholder = one[0];
      placeholder.name = task.name;
      placeholder.matrix.clear();
      placeholder.matrix_json.clear();
      placeholder.dynamic = std::move(dynamic);
      spec.tasks.push_back(std::move(placeholder));
    }
    task = RawTask();  // done with it: keep the peak low on large files
  }
  return spec;
}

}  // namespace drover::spec::internal
