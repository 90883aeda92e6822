// TaskList: a job's task instances, whole or made on demand from their
// matrix (job_spec.h).
#include <algorithm>
#include <cstdlib>

#include "core/spec/job_spec.h"
#include "core/spec/matrix_group.h"

namespace drover::spec {

TaskList::TaskList() = default;
TaskList::~TaskList() = default;
TaskList::TaskList(const TaskList& other) = default;
TaskList& TaskList::operator=(const TaskList& other) = default;
TaskList::TaskList(TaskList&& other) noexcept = default;
TaskList& TaskList::operator=(TaskList&& other) noexcept = default;

const TaskList::Segment& TaskList::SegmentOf(size_t i) const {
  if (i >= size_) std::abort();  // like an out-of-range vector index, but always caught
  // The last segment whose first instance is at or before i.
  auto it =
      std::upper_bound(segments_.begin(), segments_.end(), i,
                       [](size_t index, const Segment& s) { return index < s.first; });
  return *std::prev(it);
}

const TaskSpec& TaskList::operator[](size_t i) const {
  const Segment& s = SegmentOf(i);
  if (!s.group) return whole_[s.whole + (i - s.first)];
  const auto key = static_cast<uint32_t>(i);
  if (auto it = made_.find(key); it != made_.end()) return it->second;
  if (spare_.nodes.empty()) {
    auto it = made_.try_emplace(key).first;
    s.group->Make(i - s.first, &it->second);
    return it->second;
  }
  Made::node_type node = std::move(spare_.nodes.back());
  spare_.nodes.pop_back();
  node.key() = key;
  s.group->Make(i - s.first, &node.mapped());
  return made_.insert(std::move(node)).position->second;
}

TaskSpec TaskList::Make(size_t i) const {
  const Segment& s = SegmentOf(i);
  if (!s.group) return whole_[s.whole + (i - s.first)];
  if (auto it = made_.find(static_cast<uint32_t>(i)); it != made_.end())
    return it->second;
  TaskSpec ts;
  s.group->Make(i - s.first, &ts);
  return ts;
}

std::string TaskList::Name(size_t i) const {
  const Segment& s = SegmentOf(i);
  if (!s.group) return whole_[s.whole + (i - s.first)].name;
  return s.group->Name(i - s.first);
}

uint64_t TaskList::Fingerprint(size_t i) const {
  const Segment& s = SegmentOf(i);
  if (!s.group) return whole_[s.whole + (i - s.first)].fingerprint;
  if (auto it = made_.find(static_cast<uint32_t>(i)); it != made_.end()) {
    return it->second.fingerprint;
  }
  TaskSpec ts;
  s.group->Make(i - s.first, &ts);
  return ts.fingerprint;
}

const TaskSpec& TaskList::Shared(size_t i) const {
  const Segment& s = SegmentOf(i);
  if (!s.group) return whole_[s.whole + (i - s.first)];
  return s.group->shared;
}

bool TaskList::HasArtifacts(size_t i) const {
  const Segment& s = SegmentOf(i);
  if (!s.group) return !whole_[s.whole + (i - s.first)].artifacts.empty();
  return s.group->has_artifacts;
}

void TaskList::Release(size_t i) const {
  constexpr size_t kSpareNodes = 64;
  auto node = made_.extract(static_cast<uint32_t>(i));
  if (node && spare_.nodes.size() < kSpareNodes) spare_.nodes.push_back(std::move(node));
}

bool TaskList::IsWhole(size_t i) const { return !SegmentOf(i).group; }

TaskSpec& TaskList::MutableWhole(size_t i) {
  const Segment& s = SegmentOf(i);
  if (s.group) std::abort();  // a matrix instance is not held on its own
  return whole_[s.whole + (i - s.first)];
}

TaskList::Span TaskList::SpanOf(size_t i) const {
  const Segment& s = SegmentOf(i);
  if (!s.group) return Span{static_cast<uint32_t>(i), 1};
  return Span{s.first, s.count};
}

void TaskList::ForEachShared(
    const std::function<void(const TaskSpec& shared, Span span)>& f) const {
  for (const Segment& s : segments_) {
    if (s.group) {
      f(s.group->shared, Span{s.first, s.count});
      continue;
    }
    for (uint32_t k = 0; k < s.count; ++k) f(whole_[s.whole + k], Span{s.first + k, 1});
  }
}

void TaskList::UpdateShared(const std::function<void(TaskSpec& shared)>& f) {
  for (Segment& s : segments_) {
    if (!s.group) {
      for (uint32_t k = 0; k < s.count; ++k) f(whole_[s.whole + k]);
      continue;
    }
    // Copied, not changed in place: another TaskList may share the group.
    auto copy = std::make_shared<internal::MatrixGroup>(*s.group);
    f(copy->shared);
    s.group = std::move(copy);
    for (auto& [index, ts] : made_) {
      if (index >= s.first && index - s.first < s.count) f(ts);
    }
  }
}

TaskList::Names TaskList::NamesOf(const std::vector<uint32_t>& indices) const {
  Names n;
  n.size_ = size_;
  n.segments_.reserve(segments_.size());
  for (const Segment& s : segments_) n.segments_.push_back({s.first, s.group});
  for (const uint32_t i : indices) {
    const Segment& s = SegmentOf(i);
    if (s.group) continue;
    const TaskSpec& ts = whole_[s.whole + (i - s.first)];
    n.whole_.push_back({i, ts.name, ts.base_name, ts.backend});
  }
  return n;
}

const TaskList::Names::Segment& TaskList::Names::SegmentOf(size_t i) const {
  if (i >= size_) std::abort();  // as TaskList::SegmentOf
  auto it =
      std::upper_bound(segments_.begin(), segments_.end(), i,
                       [](size_t index, const Segment& s) { return index < s.first; });
  return *std::prev(it);
}

const TaskList::Names::Whole& TaskList::Names::WholeAt(size_t i) const {
  auto it =
      std::lower_bound(whole_.begin(), whole_.end(), i,
                       [](const Whole& w, size_t index) { return w.index < index; });
  if (it == whole_.end() || it->index != i) std::abort();  // not one of its indices
  return *it;
}

std::string TaskList::Names::Name(size_t i) const {
  const Segment& s = SegmentOf(i);
  return s.group ? s.group->Name(i - s.first) : WholeAt(i).name;
}

const std::string& TaskList::Names::Group(size_t i) const {
  const Segment& s = SegmentOf(i);
  return s.group ? s.group->shared.base_name : WholeAt(i).group;
}

const std::string& TaskList::Names::Backend(size_t i) const {
  const Segment& s = SegmentOf(i);
  return s.group ? s.group->shared.backend : WholeAt(i).backend;
}

std::optional<uint32_t> TaskList::Find(std::string_view name) const {
  for (const Segment& s : segments_) {
    if (s.group) {
      if (auto n = s.group->Find(name)) return static_cast<uint32_t>(s.first + *n);
      continue;
    }
    for (uint32_t k = 0; k < s.count; ++k) {
      if (whole_[s.whole + k].name == name) return s.first + k;
    }
  }
  return std::nullopt;
}

void TaskList::push_back(TaskSpec ts) {
  if (segments_.empty() || segments_.back().group) {
    segments_.push_back(Segment{static_cast<uint32_t>(size_), 0,
                                static_cast<uint32_t>(whole_.size()), nullptr});
  }
  whole_.push_back(std::move(ts));
  ++segments_.back().count;
  ++size_;
}

void TaskList::reserve(size_t n) { whole_.reserve(n); }

void TaskList::AppendMatrix(std::shared_ptr<const internal::MatrixGroup> group) {
  if (group->count == 0) return;
  const uint32_t count = group->count;
  segments_.push_back(Segment{static_cast<uint32_t>(size_), count, 0, std::move(group)});
  size_ += count;
}

const TaskSpec& TaskList::const_iterator::operator*() const {
  const Segment& s = list_->SegmentOf(i_);
  if (!s.group) return list_->whole_[s.whole + (i_ - s.first)];
  if (!made_) made_ = std::make_shared<TaskSpec>(list_->Make(i_));
  return *made_;
}

}  // namespace drover::spec
