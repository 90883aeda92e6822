// LoadIndex: placement's index of the workers that take work (issue 13,
// "placement that costs O(classes), not O(workers x tasks)").
//
// For each backend it keeps the workers that offer it in the order
// placement wants them: least loaded first (used / slots of that backend),
// ties in the order the workers were first filed. Picking a worker for a
// task walks that order and stops at the first one that has the free slots
// and passes the caller's other tests (labels, services, pools), or at the
// first one as loaded as the fullest a worker can be, since every one after
// it is full too. With workers that
// differ only in load (the common case) a pick costs O(log workers), where
// looking at every worker cost O(workers) for each dispatch: a coordinator
// of 1,000 one-slot workers spent a third of its time there.
//
// Plain data, no I/O: the coordinator refiles a worker whenever its slots,
// its load or whether it takes work change (core/coordinator/workers.cc,
// placement.cc, results.cc).
#ifndef DROVER_CORE_COORDINATOR_LOAD_INDEX_H_
#define DROVER_CORE_COORDINATOR_LOAD_INDEX_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace drover {

template <typename Handle>
class LoadIndex {
 public:
  // Files `who` under each backend of `slots` (backend -> slots offered,
  // 0: none) with its load from `used` (backend -> slots in use), or
  // refiles it where it already was. `prefetch` (backend -> slots it takes
  // beyond its own, Hello.prefetch) adds to what it may be given, not to
  // its slots: its load is still used / slots, so a worker with a free
  // slot of its own comes before one that would only queue the task.
  // `takes_work` false (a draining worker) removes it.
  void Put(Handle who, const std::map<std::string, uint32_t>& slots,
           const std::map<std::string, uint32_t>& prefetch,
           const std::map<std::string, uint32_t>& used, bool takes_work) {
    Filed& filed = filed_[who];
    if (filed.order == 0) filed.order = ++next_order_;
    if (!takes_work) return Unfile(who, filed);
    // Backends it no longer offers.
    for (auto it = filed.entries.begin(); it != filed.entries.end();) {
      auto s = slots.find(it->first);
      if (s != slots.end() && s->second > 0) {
        ++it;
        continue;
      }
      Drop(who, filed.order, it->first, it->second);
      it = filed.entries.erase(it);
    }
    // The rest in place: a refile moves a worker's nodes to their new keys
    // and allocates nothing (it runs twice a task: at the dispatch and at
    // the result).
    for (const auto& [backend, total] : slots) {
      if (total == 0) continue;
      auto u = used.find(backend);
      const uint32_t in_use = u == used.end() ? 0 : u->second;
      auto p = prefetch.find(backend);
      const uint32_t extra = p == prefetch.end() ? 0 : p->second;
      const uint32_t room = total + extra;
      Entry e;
      e.load = static_cast<double>(in_use) / total;
      e.full = static_cast<double>(room) / total;
      e.total = total;
      e.free = in_use >= room ? 0 : room - in_use;
      auto [it, added] = filed.entries.try_emplace(backend, e);
      if (added) {
        Backend& b = by_backend_[backend];
        b.order.insert({e.load, filed.order, who});
        b.fulls.insert(e.full);
        continue;
      }
      Entry& was = it->second;
      Backend& b = by_backend_.find(backend)->second;
      if (was.load != e.load) {
        auto node = b.order.extract({was.load, filed.order, who});
        node.value() = {e.load, filed.order, who};
        b.order.insert(std::move(node));
      }
      if (was.full != e.full) {
        auto node = b.fulls.extract(b.fulls.find(was.full));
        node.value() = e.full;
        b.fulls.insert(std::move(node));
      }
      was = e;
    }
  }

  // Forgets `who` (it left).
  void Remove(Handle who) {
    auto it = filed_.find(who);
    if (it == filed_.end()) return;
    Unfile(who, it->second);
    filed_.erase(it);
  }

  // The least loaded worker filed under `backend` with at least `need` free
  // slots (its own or prefetch, and `need` no more than its own) for which
  // accept(who) is true; `Handle{}` when there is none.
  template <typename Accept>
  Handle Pick(const std::string& backend, uint32_t need, Accept accept) const {
    auto b = by_backend_.find(backend);
    if (b == by_backend_.end()) return Handle{};
    // No worker is less loaded than this when full: past it, all are full.
    const double fullest = *b->second.fulls.rbegin();
    for (const auto& [load, order, who] : b->second.order) {
      if (load >= fullest) break;
      const Entry& e = filed_.at(who).entries.at(backend);
      if (e.free >= need && need <= e.total && accept(who)) return who;
    }
    return Handle{};
  }

  size_t size() const { return filed_.size(); }

 private:
  struct Entry {
    double load = 0;     // used / slots
    double full = 1;     // the load at which it takes no more: (slots + prefetch) / slots
    uint32_t total = 0;  // its own slots
    uint32_t free = 0;   // slots + prefetch - used
  };
  struct Filed {
    uint64_t order = 0;                     // when it was first filed: breaks ties
    std::map<std::string, Entry> entries;   // by backend
  };
  struct Backend {
    std::set<std::tuple<double, uint64_t, Handle>> order;  // (load, order, who)
    std::multiset<double> fulls;                           // every filed worker's `full`
  };

  void Unfile(Handle who, Filed& filed) {
    for (const auto& [backend, e] : filed.entries) Drop(who, filed.order, backend, e);
    filed.entries.clear();
  }

  // Takes `who`'s entry `e` out of its backend's order and fulls; a backend
  // no worker is filed under any more goes.
  void Drop(Handle who, uint64_t order, const std::string& backend, const Entry& e) {
    auto b = by_backend_.find(backend);
    if (b == by_backend_.end()) return;
    b->second.order.erase({e.load, order, who});
    if (auto f = b->second.fulls.find(e.full); f != b->second.fulls.end()) {
      b->second.fulls.erase(f);
    }
    if (b->second.order.empty()) by_backend_.erase(b);
  }

  std::unordered_map<std::string, Backend> by_backend_;
  std::unordered_map<Handle, Filed> filed_;
  uint64_t next_order_ = 0;
};

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_LOAD_INDEX_H_
