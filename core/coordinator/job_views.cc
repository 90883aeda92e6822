#include "core/coordinator/job_views.h"

#include <map>
#include <set>

#include "core/coordinator/dispatch_wire.h"

namespace drover {

std::string_view GroupOfInstance(std::string_view instance) {
  const size_t bracket = instance.find('[');
  return bracket == std::string_view::npos ? instance : instance.substr(0, bracket);
}

void CountState(dag::PlanCounts& c, dag::TaskState s, uint32_t n) {
  c.total += n;
  switch (s) {
    case dag::TaskState::kWaiting:
      c.waiting += n;
      break;
    case dag::TaskState::kReady:
      c.ready += n;
      break;
    case dag::TaskState::kRunning:
      c.running += n;
      break;
    case dag::TaskState::kRetryWait:
      c.retry_wait += n;
      break;
    case dag::TaskState::kSucceeded:
      c.succeeded += n;
      break;
    case dag::TaskState::kFailed:
      c.failed += n;
      break;
    case dag::TaskState::kBlocked:
      c.blocked += n;
      break;
    case dag::TaskState::kSkipped:
      c.skipped += n;
      break;
    case dag::TaskState::kCancelled:
      c.cancelled += n;
      break;
    case dag::TaskState::kCached:
      c.cached += n;
      break;
  }
}

Result<TaskPage> TaskPage::FromRequest(const wire::StatusRequest& req) {
  TaskPage page;
  page.offset = req.task_offset();
  page.limit = req.task_limit();
  page.group = req.task_group();
  page.name = req.task_name();
  if (!req.task_state().empty()) {
    page.state = dag::ParseTaskState(req.task_state());
    if (!page.state)
      return InvalidArgument("unknown task state '" + req.task_state() + "'");
  }
  for (const std::string& name : req.task_states()) {
    std::optional<dag::TaskState> s = dag::ParseTaskState(name);
    if (!s) return InvalidArgument("unknown task state '" + name + "'");
    page.states.push_back(*s);
  }
  return page;
}

std::vector<wire::TaskGroup> BuildGroups(
    const spec::JobSpec& spec, const std::function<dag::TaskState(uint32_t)>& state_of) {
  std::vector<wire::TaskGroup> groups;
  std::map<std::string, size_t, std::less<>> index;  // key -> position in groups
  std::vector<dag::PlanCounts> counts;
  std::vector<std::set<std::string>> needs;
  // Once per task as written (a matrix's instances share their group and
  // needs), then each instance's state.
  spec.tasks.ForEachShared([&](const spec::TaskSpec& ts, spec::TaskList::Span span) {
    auto [it, added] = index.emplace(ts.base_name, groups.size());
    if (added) {
      wire::TaskGroup g;
      g.set_name(ts.base_name);
      g.set_backend(ts.backend);
      groups.push_back(std::move(g));
      counts.emplace_back();
      needs.emplace_back();
    }
    const size_t gi = it->second;
    wire::TaskGroup& g = groups[gi];
    g.set_instances(g.instances() + span.count);
    if (!spec.tasks.IsWhole(span.first) || !ts.matrix.empty()) g.set_matrix(true);
    for (uint32_t t = span.first; t < span.first + span.count; ++t) {
      CountState(counts[gi], state_of(t));
    }
    // A need on a matrix is a run of its instances: one lookup per run.
    spec::TaskList::Span seen;
    for (uint32_t n : ts.needs) {
      const bool in_seen = n >= seen.first && n - seen.first < seen.count;
      if (n >= spec.tasks.size() || in_seen) continue;
      seen = spec.tasks.SpanOf(n);
      needs[gi].insert(spec.tasks.Shared(n).base_name);
    }
  });
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    *groups[gi].mutable_counts() = CountsToWire(counts[gi]);
    // Spec order, not alphabetical: a reader sees the file's order.
    for (const auto& g : groups) {
      if (needs[gi].count(g.name())) groups[gi].add_needs(g.name());
    }
  }
  return groups;
}

}  // namespace drover
