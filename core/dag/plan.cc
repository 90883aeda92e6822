#include "core/dag/plan.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

namespace drover::dag {
namespace {

bool NotStarted(TaskState s) {
  return s == TaskState::kWaiting || s == TaskState::kReady ||
         s == TaskState::kRetryWait;
}

}  // namespace

Plan::Plan(std::vector<PlanTask> tasks, PlanOptions options)
    : options_(options), rng_(options.jitter_seed) {
  const size_t n = tasks.size();
  nodes_.resize(n);
  policies_.reserve(n);
  // Dependents in compressed form, built by counting sort: first the number
  // of dependents of each task, then the start offsets, then the fill.
  // Out-of-range needs break the constructor's precondition; they are
  // dropped rather than read out of bounds.
  dep_begin_.assign(n + 1, 0);
  for (const PlanTask& t : tasks) {
    for (uint32_t d : t.needs) {
      if (d < n) ++dep_begin_[d + 1];
    }
  }
  for (size_t i = 1; i <= n; ++i) dep_begin_[i] += dep_begin_[i - 1];
  dependents_.resize(dep_begin_[n]);
  std::vector<size_t> cursor(dep_begin_.begin(), dep_begin_.end() - 1);
  for (size_t t = 0; t < n; ++t) {
    for (uint32_t d : tasks[t].needs) {
      if (d >= n) continue;
      dependents_[cursor[d]++] = static_cast<uint32_t>(t);
      ++nodes_[t].unmet;
    }
    policies_.push_back({std::max(0, tasks[t].retries),
                         std::max(Duration::zero(), tasks[t].backoff),
                         std::max(Duration::zero(), tasks[t].backoff_max)});
    // Each needs list is dead once read: free it now, not with `tasks`,
    // to keep the construction peak of a large plan down.
    std::vector<uint32_t>().swap(tasks[t].needs);
  }
  uint32_t queues = 1;
  for (size_t t = 0; t < n; ++t) {
    nodes_[t].queue = tasks[t].queue;
    queues = std::max(queues, tasks[t].queue + 1);
  }
  ready_.assign(queues, Queue{});
  counts_.total = static_cast<uint32_t>(n);
  counts_.waiting = static_cast<uint32_t>(n);
  for (size_t t = 0; t < n; ++t) {
    if (nodes_[t].unmet == 0) MakeReady(static_cast<uint32_t>(t));
  }
}

uint32_t Plan::size() const { return static_cast<uint32_t>(nodes_.size()); }

TaskState Plan::state(uint32_t task) const {
  return Valid(task) ? nodes_[task].state : TaskState::kSkipped;
}

int Plan::attempts(uint32_t task) const {
  return Valid(task) ? nodes_[task].attempts : 0;
}

const PlanCounts& Plan::counts() const { return counts_; }

bool Plan::Finished() const {
  return counts_.waiting == 0 && counts_.ready == 0 && counts_.running == 0 &&
         counts_.retry_wait == 0;
}

bool Plan::Succeeded() const {
  return counts_.succeeded + counts_.cached == counts_.total;
}

bool Plan::halted() const { return halted_; }

void Plan::MarkSucceeded(uint32_t task) { MarkDone(task, TaskState::kSucceeded); }

void Plan::MarkCached(uint32_t task) { MarkDone(task, TaskState::kCached); }

void Plan::MarkDone(uint32_t task, TaskState done) {
  if (!Valid(task)) return;
  const TaskState s = nodes_[task].state;
  if (s == TaskState::kReady) {
    Unlink(task);
  } else if (s != TaskState::kWaiting) {
    return;
  }
  SetState(task, done);
  Release(task);
}

std::optional<uint32_t> Plan::PeekReady() const {
  std::optional<uint32_t> oldest;
  for (const Queue& q : ready_) {
    if (q.head == kNil) continue;
    if (!oldest || nodes_[q.head].ready_seq < nodes_[*oldest].ready_seq) oldest = q.head;
  }
  return oldest;
}

std::optional<uint32_t> Plan::PeekReady(uint32_t queue) const {
  if (queue >= ready_.size() || ready_[queue].head == kNil) return std::nullopt;
  return ready_[queue].head;
}

uint32_t Plan::queues() const { return static_cast<uint32_t>(ready_.size()); }

uint32_t Plan::queue(uint32_t task) const { return Valid(task) ? nodes_[task].queue : 0; }

bool Plan::CancelNotStarted(uint32_t task) {
  if (!Valid(task) || !NotStarted(nodes_[task].state)) return false;
  if (nodes_[task].state == TaskState::kReady) Unlink(task);
  SetState(task, TaskState::kCancelled);
  Block(task);
  return true;
}

uint32_t Plan::Grow(uint32_t like, uint32_t count) {
  const uint32_t first = size();
  if (!Valid(like) || nodes_[like].state != TaskState::kReady ||
      count > kNil - 1 - first) {
    return first;
  }
  // The copies come last in the compressed dependents, so appending keeps
  // the form: dep_begin_[first] == dependents_.size().
  const size_t deps_begin = dep_begin_[like];
  const size_t deps_end = dep_begin_[like + 1];
  dependents_.reserve(dependents_.size() + count * (deps_end - deps_begin));
  nodes_.reserve(nodes_.size() + count);
  for (uint32_t k = 0; k < count; ++k) {
    for (size_t i = deps_begin; i < deps_end; ++i) dependents_.push_back(dependents_[i]);
    dep_begin_.push_back(dependents_.size());
    Node node;
    node.queue = nodes_[like].queue;
    nodes_.push_back(node);
    policies_.push_back(policies_[like]);
    ++counts_.total;
    ++counts_.waiting;
    MakeReady(first + k);
  }
  for (size_t i = deps_begin; i < deps_end; ++i) {
    Node& dep = nodes_[dependents_[i]];
    if (dep.state == TaskState::kWaiting) dep.unmet += count;
  }
  return first;
}

void Plan::RestoreAttempts(uint32_t task, int attempts) {
  if (Valid(task)) nodes_[task].attempts = std::max(0, attempts);
}

void Plan::Start(uint32_t task) {
  if (!Valid(task) || nodes_[task].state != TaskState::kReady) return;
  Unlink(task);
  SetState(task, TaskState::kRunning);
  ++nodes_[task].attempts;
}

void Plan::Unstart(uint32_t task) {
  if (!Valid(task) || nodes_[task].state != TaskState::kRunning) return;
  if (nodes_[task].attempts > 0) --nodes_[task].attempts;
  // A halted plan starts nothing again: the attempt never ran, so the task
  // ends as not started.
  if (halted_) {
    SetState(task, TaskState::kSkipped);
  } else {
    MakeReady(task);
  }
}

void Plan::OnSucceeded(uint32_t task) {
  if (!Valid(task) || nodes_[task].state != TaskState::kRunning) return;
  SetState(task, TaskState::kSucceeded);
  Release(task);
}

std::optional<SteadyTime> Plan::OnFailed(uint32_t task, SteadyTime now,
                                         bool retryable) {
  if (!Valid(task) || nodes_[task].state != TaskState::kRunning) {
    return std::nullopt;
  }
  if (retryable && !halted_ &&
      nodes_[task].attempts <= policies_[task].retries) {
    const SteadyTime at = now + RetryDelay(task);
    SetState(task, TaskState::kRetryWait);
    retry_heap_.push_back({at, task});
    std::push_heap(retry_heap_.begin(), retry_heap_.end(), RetryLater);
    return at;
  }
  SetState(task, TaskState::kFailed);
  Block(task);
  if (options_.fail_fast) SkipPending();
  return std::nullopt;
}

void Plan::OnCancelled(uint32_t task) {
  if (!Valid(task) || nodes_[task].state != TaskState::kRunning) return;
  SetState(task, TaskState::kCancelled);
  Block(task);
}

std::vector<uint32_t> Plan::CancelPending() {
  SkipPending();
  std::vector<uint32_t> running;
  running.reserve(counts_.running);
  for (uint32_t t = 0; t < nodes_.size() && running.size() < counts_.running;
       ++t) {
    if (nodes_[t].state == TaskState::kRunning) running.push_back(t);
  }
  return running;
}

void Plan::Promote(SteadyTime now) {
  while (!retry_heap_.empty() && retry_heap_.front().at <= now) {
    std::pop_heap(retry_heap_.begin(), retry_heap_.end(), RetryLater);
    const uint32_t task = retry_heap_.back().task;
    retry_heap_.pop_back();
    if (nodes_[task].state == TaskState::kRetryWait) MakeReady(task);
  }
}

std::optional<SteadyTime> Plan::NextRetryAt() const {
  if (retry_heap_.empty()) return std::nullopt;
  return retry_heap_.front().at;
}

bool Plan::RetryLater(const RetryEntry& a, const RetryEntry& b) {
  // std::*_heap keep the greatest element first; "greater" here means
  // "later", so the front is the earliest retry (ties: lowest index).
  if (a.at != b.at) return a.at > b.at;
  return a.task > b.task;
}

uint32_t& Plan::Count(TaskState s) {
  switch (s) {
    case TaskState::kWaiting: return counts_.waiting;
    case TaskState::kReady: return counts_.ready;
    case TaskState::kRunning: return counts_.running;
    case TaskState::kRetryWait: return counts_.retry_wait;
    case TaskState::kSucceeded: return counts_.succeeded;
    case TaskState::kFailed: return counts_.failed;
    case TaskState::kBlocked: return counts_.blocked;
    case TaskState::kSkipped: return counts_.skipped;
    case TaskState::kCancelled: return counts_.cancelled;
    case TaskState::kCached: return counts_.cached;
  }
  return counts_.waiting;  // unreachable: every enumerator is handled
}

void Plan::SetState(uint32_t task, TaskState s) {
  Node& node = nodes_[task];
  --Count(node.state);
  ++Count(s);
  node.state = s;
}

void Plan::MakeReady(uint32_t task) {
  SetState(task, TaskState::kReady);
  Node& node = nodes_[task];
  Queue& q = ready_[node.queue];
  node.ready_seq = next_ready_seq_++;
  node.prev = q.tail;
  node.next = kNil;
  if (q.tail == kNil) {
    q.head = task;
  } else {
    nodes_[q.tail].next = task;
  }
  q.tail = task;
}

void Plan::Unlink(uint32_t task) {
  Node& node = nodes_[task];
  Queue& q = ready_[node.queue];
  if (node.prev == kNil) {
    q.head = node.next;
  } else {
    nodes_[node.prev].next = node.next;
  }
  if (node.next == kNil) {
    q.tail = node.prev;
  } else {
    nodes_[node.next].prev = node.prev;
  }
  node.prev = node.next = kNil;
}

void Plan::Release(uint32_t task) {
  for (size_t i = dep_begin_[task]; i < dep_begin_[task + 1]; ++i) {
    Node& dep = nodes_[dependents_[i]];
    if (dep.unmet > 0) --dep.unmet;
    // Only a waiting dependent can become ready: a blocked one stays blocked
    // (another dependency failed), a resumed one is already succeeded (or cached).
    if (dep.unmet == 0 && dep.state == TaskState::kWaiting) {
      MakeReady(dependents_[i]);
    }
  }
}

void Plan::Block(uint32_t task) {
  // Iterative depth-first walk. Only waiting tasks are blocked (a dependent
  // of an unfinished task cannot have started), and a task leaves waiting
  // when blocked, so each is blocked and counted once and the walk is
  // O(dependents reached). A dependent marked succeeded by resume keeps its
  // result and does not propagate the block.
  std::vector<uint32_t> stack{task};
  while (!stack.empty()) {
    const uint32_t u = stack.back();
    stack.pop_back();
    for (size_t i = dep_begin_[u]; i < dep_begin_[u + 1]; ++i) {
      const uint32_t d = dependents_[i];
      if (nodes_[d].state != TaskState::kWaiting) continue;
      SetState(d, TaskState::kBlocked);
      stack.push_back(d);
    }
  }
}

void Plan::SkipPending() {
  halted_ = true;
  if (counts_.waiting == 0 && counts_.ready == 0 && counts_.retry_wait == 0) {
    return;  // already done once (fail_fast after fail_fast): no scan
  }
  for (uint32_t t = 0; t < nodes_.size(); ++t) {
    if (NotStarted(nodes_[t].state)) {
      SetState(t, TaskState::kSkipped);
      nodes_[t].prev = nodes_[t].next = kNil;
    }
  }
  for (Queue& q : ready_) q = Queue{};
  retry_heap_.clear();
}

Duration Plan::RetryDelay(uint32_t task) {
  const RetryPolicy& p = policies_[task];
  const int64_t base = p.backoff.count();
  const int64_t cap = p.backoff_max.count();
  // attempts >= 1 for a task that ran; the attempt that just failed is
  // number `attempts`, so its retry waits backoff * 2^(attempts-1).
  const int shift = std::max(0, nodes_[task].attempts - 1);
  int64_t delay;
  if (base == 0) {
    delay = 0;
  } else if (shift >= 62 || base > (cap >> shift)) {
    delay = cap;  // doubling would pass the cap (or overflow)
  } else {
    delay = std::min(base << shift, cap);
  }
  if (delay == 0) return Duration::zero();
  // Jitter in [-20%, +20%) so that tasks failing together do not retry in
  // lockstep. 53 random bits make a uniform double in [0, 1).
  const double unit = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  const double factor = 0.8 + 0.4 * unit;
  return Duration(std::llround(static_cast<double>(delay) * factor));
}

}  // namespace drover::dag
