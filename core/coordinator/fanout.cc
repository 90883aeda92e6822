#include "core/coordinator/fanout.h"

#include <algorithm>
#include <limits>
#include <map>
#include <memory>

#include "core/base/outputs.h"
#include "core/coordinator/job_views.h"
#include "core/spec/dynamic_matrix.h"
#include "core/spec/outputs.h"

namespace drover {
namespace {

std::string Which(const spec::OutputRef& ref) {
  return "'" + ref.task + "'" +
         (ref.key == "result" ? "'s result" : "'s output " + ref.key);
}

// The reference `ref` (one of a DeferredRender) lists the instances of
// placeholder `t`.
bool RefersTo(const spec::OutputRef& ref, uint32_t t) {
  return ref.dynamic && ref.first == t;
}

// `deferred` with its references to placeholder `t` listing `indices`, or
// null when it has none (then it stays as it is).
std::shared_ptr<const spec::DeferredRender> WithIndices(
    const std::shared_ptr<const spec::DeferredRender>& deferred, uint32_t t,
    const std::vector<uint32_t>& indices) {
  if (!deferred) return nullptr;
  if (std::none_of(deferred->refs.begin(), deferred->refs.end(),
                   [t](const spec::OutputRef& r) { return RefersTo(r, t); })) {
    return nullptr;
  }
  auto copy = std::make_shared<spec::DeferredRender>(*deferred);
  for (spec::OutputRef& r : copy->refs) {
    if (RefersTo(r, t)) r.indices = indices;
  }
  return copy;
}

}  // namespace

std::vector<uint32_t> FanoutPlaceholders(const spec::JobSpec& spec) {
  std::vector<uint32_t> out;
  // A placeholder is held whole: a matrix's shared fields have no `dynamic`.
  spec.tasks.ForEachShared([&](const spec::TaskSpec& ts, spec::TaskList::Span span) {
    if (ts.dynamic) out.push_back(span.first);
  });
  return out;
}

Result<std::vector<spec::TaskSpec>> BuildFanout(const spec::JobSpec& spec,
                                                const OutputsOf& outputs_of, uint32_t t,
                                                const spec::LoadOptions& options) {
  if (t >= spec.tasks.size() || !spec.tasks[t].dynamic) {
    return FailedPrecondition("task " + std::to_string(t) +
                              " is not a fan-out placeholder");
  }
  const spec::TaskSpec& placeholder = spec.tasks[t];
  const spec::DynamicMatrix& d = *placeholder.dynamic;
  std::vector<spec::MatrixValues> dynamic;
  dynamic.reserve(d.sources.size());
  for (const spec::DynamicMatrix::Source& source : d.sources) {
    const std::string subject =
        "matrix key '" + d.keys[source.key] + "' from " + Which(source.ref);
    const uint32_t from = spec::SourceIndex(source.ref);
    if (from >= spec.tasks.size()) return FailedPrecondition(subject + ": no such task");
    const std::optional<Outputs> outputs = OutputsFromJson(outputs_of(from));
    auto value = outputs ? outputs->find(source.ref.key) : Outputs::const_iterator();
    if (!outputs || value == outputs->end()) {
      std::string keys;
      if (outputs) {
        for (const auto& [k, v] : *outputs) keys += (keys.empty() ? "" : ", ") + k;
      }
      return NotFound(subject + ": task '" + spec.tasks.Name(from) +
                      "' produced no output '" + source.ref.key + "' (" +
                      (keys.empty() ? "it produced no outputs" : "its outputs: " + keys) +
                      ")");
    }
    Result<spec::MatrixValues> values =
        spec::ParseMatrixValues(value->second, d.keys.size() > 1);
    if (!values.ok()) return InvalidArgument(subject + ": " + values.status().message());
    dynamic.push_back(std::move(*values));
  }

  // The caps of a static matrix (spec::LoadOptions), applied to the job as
  // it would be: the placeholder's slot is its first instance.
  const uint64_t count = spec::DynamicInstanceCount(placeholder, dynamic);
  const uint64_t cap =
      std::min<uint64_t>(options.max_instances, std::numeric_limits<uint32_t>::max() - 1);
  const uint64_t others = spec.tasks.size() - 1;
  if (count > cap || others + count > cap) {
    return FailedPrecondition("the fan-out gives " + std::to_string(count) +
                              " instances; with the job's " + std::to_string(others) +
                              " other task instances that is more than the cap of " +
                              std::to_string(cap));
  }
  uint64_t edges = 0;
  uint64_t dependents = 0;
  spec.tasks.ForEachShared([&](const spec::TaskSpec& ts, spec::TaskList::Span span) {
    edges += ts.needs.size() * span.count;
    dependents += std::count(ts.needs.begin(), ts.needs.end(), t) * span.count;
  });
  const uint64_t added = (count - 1) * (placeholder.needs.size() + dependents);
  if (edges + added > options.max_edges) {
    return FailedPrecondition(
        "the fan-out gives " + std::to_string(count) +
        " instances, which would take the job to " + std::to_string(edges + added) +
        " dependencies between task instances, more than the cap of " +
        std::to_string(options.max_edges));
  }
  return spec::ExpandDynamic(placeholder, dynamic);
}

std::vector<uint32_t> InsertFanout(spec::JobSpec& spec, uint32_t t,
                                   std::vector<spec::TaskSpec> instances) {
  const uint32_t before = static_cast<uint32_t>(spec.tasks.size());
  std::vector<uint32_t> indices;
  indices.reserve(instances.size());
  indices.push_back(t);
  for (uint32_t k = 1; k < instances.size(); ++k) indices.push_back(before + k - 1);

  // Dependents and references first, on the tasks that exist now.
  std::map<const spec::DeferredRender*, std::shared_ptr<const spec::DeferredRender>>
      renamed;
  auto update = [&](std::shared_ptr<const spec::DeferredRender>& deferred) {
    if (!deferred) return;
    auto it = renamed.find(deferred.get());
    if (it == renamed.end()) {
      it = renamed.emplace(deferred.get(), WithIndices(deferred, t, indices)).first;
    }
    if (it->second) deferred = it->second;
  };
  spec.tasks.UpdateShared([&](spec::TaskSpec& ts) {
    if (std::find(ts.needs.begin(), ts.needs.end(), t) != ts.needs.end()) {
      ts.needs.insert(ts.needs.end(), indices.begin() + 1, indices.end());
    }
    update(ts.deferred);
    if (ts.dynamic && ts.dynamic->deferred) {
      std::shared_ptr<const spec::DeferredRender> deferred = ts.dynamic->deferred;
      update(deferred);
      if (deferred != ts.dynamic->deferred) {
        auto copy = std::make_shared<spec::DynamicMatrix>(*ts.dynamic);
        copy->deferred = std::move(deferred);
        ts.dynamic = std::move(copy);
      }
    }
  });
  // The instances' own references may name an already expanded task: they
  // share the placeholder's DeferredRender, updated by earlier expansions.
  spec.tasks.MutableWhole(t) = std::move(instances[0]);
  spec.tasks.reserve(before + instances.size() - 1);
  for (size_t k = 1; k < instances.size(); ++k)
    spec.tasks.push_back(std::move(instances[k]));
  return indices;
}

Result<std::vector<uint32_t>> ExpandFanout(JobState& job, uint32_t t,
                                           const spec::LoadOptions& options,
                                           std::vector<store::TaskRecord>* rows) {
  if (job.plan->state(t) != dag::TaskState::kReady) {
    return FailedPrecondition("the fan-out's upstream tasks have not all succeeded");
  }
  Result<std::vector<spec::TaskSpec>> built = BuildFanout(
      job.spec, [&](uint32_t i) { return job.OutputsJson(i); }, t, options);
  if (!built.ok()) return built.status();
  const uint32_t count = static_cast<uint32_t>(built->size());
  const std::vector<uint32_t> needs = job.spec.tasks[t].needs;
  const std::vector<uint32_t> indices = InsertFanout(job.spec, t, std::move(*built));

  // Carried over only when what they were expanded from was: an upstream
  // that ran again in this run may have produced other values.
  const bool upstream_carried = std::all_of(needs.begin(), needs.end(), [&](uint32_t u) {
    return job.plan->state(u) == dag::TaskState::kSucceeded && job.plan->attempts(u) == 0;
  });
  const uint32_t first_new = job.plan->Grow(t, count - 1);
  (void)first_new;  // == the old size: the appended instances follow it
  job.GrowRows();
  job.held[t].reset();  // the placeholder's row (its pending_reason) is instance 0's now
  rows->clear();
  rows->reserve(indices.size());
  for (uint32_t i : indices) {
    const spec::TaskSpec& ts = job.spec.tasks[i];
    auto old = job.fanout_old.find(ts.name);
    job.attempt_base[i] = old == job.fanout_old.end() ? 0 : old->second.attempts;
    job.current[i] = 0;
    if (upstream_carried && old != job.fanout_old.end() &&
        dag::ParseTaskState(old->second.state) == dag::TaskState::kSucceeded &&
        old->second.fingerprint == ts.fingerprint) {
      rows->push_back(old->second);
      job.plan->MarkSucceeded(i);
      job.KeepOutputs(i, old->second.outputs_json);
      job.ended[i] = true;
    } else {
      // Written so that a restart finds the expansion (ReplayFanouts); in
      // its first state, so not held.
      rows->push_back(job.FirstRow(i));
    }
    store::TaskRecord& row = rows->back();
    row.job_id = job.record.id;
    row.index = i;
    row.name = ts.name;
    row.fingerprint = ts.fingerprint;
  }
  job.record.tasks = job.size();
  return indices;
}

Status ReplayFanouts(spec::JobSpec& spec, const std::vector<store::TaskRecord>& rows) {
  const std::vector<uint32_t> placeholders = FanoutPlaceholders(spec);
  if (placeholders.empty()) return Status::Ok();
  const size_t loaded = spec.tasks.size();
  // An expanded placeholder's row is named after its first instance. Those
  // with instances past the loaded tasks expanded in the order their first
  // such row comes; those with one instance append nothing (any order).
  std::map<std::string, uint32_t> by_name;
  for (uint32_t p : placeholders) by_name.emplace(spec.tasks[p].name, p);
  std::vector<uint32_t> order;
  for (uint32_t p : placeholders) {
    if (p < rows.size() && rows[p].name != spec.tasks[p].name &&
        GroupOfInstance(rows[p].name) == spec.tasks[p].name) {
      bool appended = false;
      for (size_t j = loaded; j < rows.size() && !appended; ++j) {
        appended = GroupOfInstance(rows[j].name) == spec.tasks[p].name;
      }
      if (!appended) order.push_back(p);
    }
  }
  for (size_t j = loaded; j < rows.size(); ++j) {
    auto it = by_name.find(std::string(GroupOfInstance(rows[j].name)));
    if (it == by_name.end()) {
      return FailedPrecondition("task row " + std::to_string(j) + " '" + rows[j].name +
                                "' is no instance of a dynamic matrix of the spec");
    }
    if (std::find(order.begin(), order.end(), it->second) == order.end()) {
      order.push_back(it->second);
    }
  }
  spec::LoadOptions unlimited;
  unlimited.max_instances = std::numeric_limits<uint64_t>::max();
  unlimited.max_edges = std::numeric_limits<uint64_t>::max();
  for (uint32_t p : order) {
    Result<std::vector<spec::TaskSpec>> built = BuildFanout(
        spec,
        [&](uint32_t i) {
          return i < rows.size() ? std::string_view(rows[i].outputs_json)
                                 : std::string_view();
        },
        p, unlimited);
    if (!built.ok()) {
      return FailedPrecondition("cannot expand task '" + spec.tasks[p].name +
                                "' again: " + built.status().message());
    }
    InsertFanout(spec, p, std::move(*built));
  }
  return Status::Ok();
}

}  // namespace drover
