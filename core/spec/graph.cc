// Checks on the job as a whole: `needs` names, cycles, and the size caps.
// They run on the tasks as written (one node per task, not per instance),
// so their cost does not grow with matrix sizes.
#include <algorithm>
#include <limits>
#include <set>
#include <unordered_map>

#include "core/spec/raw_job.h"
#include "core/spec/text.h"

namespace drover::spec::internal {
namespace {

constexpr uint64_t kSaturated = std::numeric_limits<uint64_t>::max();

uint64_t SatAdd(uint64_t a, uint64_t b) {
  uint64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? kSaturated : sum;
}

uint64_t SatMul(uint64_t a, uint64_t b) {
  uint64_t product = 0;
  return __builtin_mul_overflow(a, b, &product) ? kSaturated : product;
}

std::string Count(uint64_t n) {
  return n == kSaturated ? "more than " + WithCommas(n) : WithCommas(n);
}

// Unknown names get a "did you mean" only for the first few: each one is a
// scan over every task name, and a file with 100,000 broken references must
// still be checked in linear time.
constexpr int kMaxSuggestions = 100;

void ResolveNeeds(RawJob* job, ErrorSink* errors) {
  std::unordered_map<std::string_view, uint32_t> index;
  index.reserve(job->tasks.size());
  for (uint32_t i = 0; i < job->tasks.size(); ++i) index.emplace(job->tasks[i].name, i);
  std::vector<std::string_view> names;
  int suggestions_left = kMaxSuggestions;

  for (uint32_t i = 0; i < job->tasks.size(); ++i) {
    RawTask& task = job->tasks[i];
    for (NeedRef& need : task.needs) {
      const auto found = index.find(need.name);
      if (found == index.end()) {
        std::string message =
            "task '" + task.name + "' needs unknown task " + Quoted(need.name);
        const size_t bracket = need.name.find('[');
        if (bracket != std::string::npos && bracket > 0 &&
            index.count(std::string_view(need.name).substr(0, bracket)) > 0) {
          message += " (a task needs every instance of a matrix task: write '" +
                     need.name.substr(0, bracket) + "')";
        } else if (suggestions_left > 0) {
          --suggestions_left;
          if (names.empty()) {
            for (const RawTask& t : job->tasks) names.push_back(t.name);
          }
          message += DidYouMean(need.name, names);
        }
        errors->Add(need.where, std::move(message));
      } else if (found->second == i) {
        errors->Add(need.where, "task '" + task.name + "' needs itself");
      } else {
        need.target = found->second;
      }
    }
    // `needs: [a, a]` means a once; the Plan counts each index as one
    // unmet dependency, so duplicates must not reach it.
    std::vector<uint32_t> seen;
    std::erase_if(task.needs, [&seen](const NeedRef& need) {
      if (need.target == kNoTask) return false;
      if (std::find(seen.begin(), seen.end(), need.target) != seen.end()) return true;
      seen.push_back(need.target);
      return false;
    });
  }
}

std::string CyclePath(const RawJob& job, const std::vector<uint32_t>& cycle) {
  // Long cycles keep their start and end readable.
  constexpr size_t kShown = 10;
  std::string path;
  for (size_t k = 0; k < cycle.size(); ++k) {
    if (cycle.size() > kShown + 2 && k == kShown) {
      path += "... (" + WithCommas(cycle.size() - kShown - 1) + " more) -> ";
      k = cycle.size() - 1;
    }
    path += job.tasks[cycle[k]].name + " -> ";
  }
  return path + job.tasks[cycle.front()].name;
}

// A depth-first search with an explicit stack (a 100,000-task chain must
// not overflow the call stack). Every back edge closes a cycle; each is
// reported once, starting at its task that comes first in the file, at the
// `needs` entry that leads to the next task of the cycle.
void ReportCycles(const RawJob* job, ErrorSink* errors) {
  constexpr size_t kMaxReported = 10;
  const uint32_t n = static_cast<uint32_t>(job->tasks.size());
  enum : uint8_t { kWhite, kGray, kBlack };
  std::vector<uint8_t> color(n, kWhite);
  std::vector<uint32_t> depth_of(n, 0);
  struct Frame {
    uint32_t task;
    size_t next_need;
  };
  std::vector<Frame> stack;
  std::set<std::vector<uint32_t>> reported;

  for (uint32_t root = 0; root < n && reported.size() < kMaxReported; ++root) {
    if (color[root] != kWhite) continue;
    color[root] = kGray;
    stack.push_back({root, 0});
    while (!stack.empty()) {
      Frame& top = stack.back();
      const std::vector<NeedRef>& needs = job->tasks[top.task].needs;
      if (top.next_need == needs.size()) {
        color[top.task] = kBlack;
        stack.pop_back();
        continue;
      }
      const uint32_t next = needs[top.next_need++].target;
      if (next == kNoTask) continue;
      if (color[next] == kWhite) {
        color[next] = kGray;
        depth_of[next] = static_cast<uint32_t>(stack.size());
        stack.push_back({next, 0});
      } else if (color[next] == kGray && reported.size() < kMaxReported) {
        std::vector<uint32_t> cycle;
        for (size_t k = depth_of[next]; k < stack.size(); ++k)
          cycle.push_back(stack[k].task);
        std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()),
                    cycle.end());
        if (!reported.insert(cycle).second) continue;
        const RawTask& first = job->tasks[cycle[0]];
        const uint32_t second = cycle.size() > 1 ? cycle[1] : cycle[0];
        Pos where = first.where;
        for (const NeedRef& need : first.needs) {
          if (need.target == second) {
            where = need.where;
            break;
          }
        }
        errors->Add(where, "dependency cycle: " + CyclePath(*job, cycle) +
                               " (each task needs the next)");
      }
    }
  }
}

void CheckCaps(const RawJob& job, const LoadOptions& options, ErrorSink* errors) {
  if (job.tasks.empty()) return;
  // Indices are 32-bit, whatever the configured cap.
  const uint64_t cap =
      std::min<uint64_t>(options.max_instances, std::numeric_limits<uint32_t>::max() - 1);
  uint64_t total = 0;
  size_t biggest = 0;
  for (size_t i = 0; i < job.tasks.size(); ++i) {
    total = SatAdd(total, job.tasks[i].instances);
    if (job.tasks[i].instances > job.tasks[biggest].instances) biggest = i;
  }
  if (total > cap) {
    const RawTask& big = job.tasks[biggest];
    if (big.has_matrix) {
      errors->Add(big.matrix_where, "the job expands to " + Count(total) +
                                        " task instances, more than the cap of " +
                                        WithCommas(cap) + " (the matrix of task '" +
                                        big.name + "' alone gives " +
                                        Count(big.instances) + ")");
    } else {
      errors->Add(job.tasks_where, "the job has " + Count(total) +
                                       " tasks, more than the cap of " + WithCommas(cap));
    }
  }

  uint64_t edges = 0;
  uint64_t worst_edges = 0;
  size_t worst = 0;
  for (size_t i = 0; i < job.tasks.size(); ++i) {
    const RawTask& task = job.tasks[i];
    uint64_t per_instance = 0;
    for (const NeedRef& need : task.needs) {
      if (need.target != kNoTask) {
        per_instance = SatAdd(per_instance, job.tasks[need.target].instances);
      }
    }
    const uint64_t task_edges = SatMul(per_instance, task.instances);
    edges = SatAdd(edges, task_edges);
    if (task_edges > worst_edges) {
      worst_edges = task_edges;
      worst = i;
    }
  }
  if (edges > options.max_edges) {
    const RawTask& task = job.tasks[worst];
    const uint64_t per_instance = task.instances == 0 ? 0 : worst_edges / task.instances;
    std::string detail =
        task.instances > 1
            ? "each of the " + Count(task.instances) + " instances of task '" +
                  task.name + "' needs " + Count(per_instance) + " instances"
            : "task '" + task.name + "' needs " + Count(per_instance) + " instances";
    errors->Add(task.needs.empty() ? task.where : task.needs.front().where,
                "the job has " + Count(edges) +
                    " dependencies between task instances, more than the cap of " +
                    WithCommas(options.max_edges) + " (" + detail + ")");
  }
}

// Every `${tasks.NAME...}` reference (outputs.h) names a task the referring
// one needs (directly: its outputs exist once it succeeded), and a
// selector [K=V,...] names one instance of it.
void CheckOutputRefs(RawJob* job, ErrorSink* errors) {
  std::unordered_map<std::string_view, uint32_t> index;
  index.reserve(job->tasks.size());
  for (uint32_t i = 0; i < job->tasks.size(); ++i) index.emplace(job->tasks[i].name, i);
  std::vector<std::string_view> names;
  int suggestions_left = kMaxSuggestions;
  // `for_matrix`: the reference gives a dynamic matrix key its values.
  auto check = [&](RawTask& task, OutputRef& ref, bool for_matrix) {
    const std::string subject = ref.text + " in task '" + task.name + "'";
    const auto found = index.find(ref.task);
    if (found == index.end()) {
      std::string message = subject + " refers to unknown task " + Quoted(ref.task);
      if (suggestions_left-- > 0) {
        if (names.empty()) {
          for (const RawTask& t : job->tasks) names.push_back(t.name);
        }
        message += DidYouMean(ref.task, names);
      }
      errors->Add(ref.where, std::move(message));
      return;
    }
    ref.target = found->second;
    const bool needed =
        std::any_of(task.needs.begin(), task.needs.end(),
                    [&](const NeedRef& n) { return n.target == ref.target; });
    if (!needed) {
      std::vector<std::string_view> needs;
      for (const NeedRef& n : task.needs) needs.push_back(n.name);
      std::string message = subject + ": task " + Quoted(ref.task) +
                            " is not in its needs (add it: its outputs exist once it "
                            "has succeeded)";
      if (!needs.empty()) message += DidYouMean(ref.task, needs);
      errors->Add(ref.where, std::move(message));
      return;
    }
    const RawTask& target = job->tasks[ref.target];
    if (!target.dynamic_keys.empty()) {
      if (for_matrix) {
        errors->Add(ref.where, subject + ": task '" + target.name +
                                   "' has a dynamic matrix itself; a dynamic matrix "
                                   "cannot take its values from one (no nested fan-out)");
      } else if (!ref.select.empty()) {
        errors->Add(ref.where, subject + ": task '" + target.name +
                                   "' has a dynamic matrix, whose instances are known "
                                   "only at run time: no instance can be picked (write "
                                   "${tasks." +
                                   target.name + ".outputs." + ref.key +
                                   "} for the list of all their outputs)");
      }
      return;
    }
    if (for_matrix && target.has_matrix && ref.select.empty()) {
      errors->Add(ref.where,
                  subject + ": task '" + target.name +
                      "' has a matrix, so its output is one list per instance, "
                      "not a list of values; pick one instance with ${tasks." +
                      target.name + "[KEY=VALUE].outputs." + ref.key + "}");
      return;
    }
    if (ref.select.empty()) return;
    if (!target.has_matrix) {
      errors->Add(ref.where, subject + ": task '" + target.name +
                                 "' has no matrix to pick an instance of (write "
                                 "${tasks." +
                                 target.name + ".outputs.KEY})");
      return;
    }
    if (!target.matrix_ok) return;  // its matrix was reported
    // The instance's offset: the last key varies fastest (expand.cc).
    if (ref.select.size() != target.matrix_keys.size()) {
      std::string keys;
      for (const std::string& k : target.matrix_keys)
        keys += (keys.empty() ? "" : ",") + k;
      errors->Add(ref.where, subject + ": an instance of task '" + target.name +
                                 "' is picked by every key of its matrix: [" + keys +
                                 "], with one value each");
      return;
    }
    uint64_t offset = 0;
    bool ok = true;
    for (size_t k = 0; k < target.matrix_keys.size() && ok; ++k) {
      const auto& [key, value] = ref.select[k];
      if (key != target.matrix_keys[k]) {
        std::vector<std::string_view> keys(target.matrix_keys.begin(),
                                           target.matrix_keys.end());
        errors->Add(ref.where, subject + ": key " + std::to_string(k + 1) +
                                   " of the matrix of task '" + target.name + "' is '" +
                                   target.matrix_keys[k] + "', not " + Quoted(key) +
                                   DidYouMean(key, keys));
        ok = false;
        break;
      }
      const std::vector<std::string>& values = target.matrix_values[k];
      const auto v = std::find(values.begin(), values.end(), value);
      if (v == values.end()) {
        std::vector<std::string_view> all(values.begin(), values.end());
        errors->Add(ref.where, subject + ": the matrix of task '" + target.name +
                                   "' has no value " + Quoted(value) + " for key '" +
                                   key + "'" + DidYouMean(value, all));
        ok = false;
        break;
      }
      offset = offset * values.size() + static_cast<uint64_t>(v - values.begin());
    }
    if (ok) ref.select_offset = offset;
  };
  for (RawTask& task : job->tasks) {
    for (OutputRef& ref : task.output_refs) check(task, ref, false);
    for (DynamicKey& d : task.dynamic_keys) check(task, d.ref, true);
  }
}

}  // namespace

void CheckGraph(RawJob* job, const LoadOptions& options, ErrorSink* errors) {
  ResolveNeeds(job, errors);
  CheckOutputRefs(job, errors);
  ReportCycles(job, errors);
  CheckCaps(*job, options, errors);
}

}  // namespace drover::spec::internal
