// core/coordinator/load_index.h: placement's index of workers by load.
#include "core/coordinator/load_index.h"

#include <map>
#include <string>

#include <gtest/gtest.h>

namespace drover {
namespace {

using Slots = std::map<std::string, uint32_t>;
const auto kAny = [](int) { return true; };

// Given workers with different loads, a pick should return the least
// loaded one with a free slot, and one with two free slots when two are
// needed even if a less loaded one has only one.
TEST(LoadIndexTest, PicksTheLeastLoadedWorkerWithRoom) {
  LoadIndex<int> index;
  index.Put(1, {{"spawn", 4}}, {}, {{"spawn", 3}}, true);  // 0.75, 1 free
  index.Put(2, {{"spawn", 2}}, {}, {{"spawn", 1}}, true);  // 0.5, 1 free
  index.Put(3, {{"spawn", 8}}, {}, {{"spawn", 5}}, true);  // 0.625, 3 free
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 2);
  EXPECT_EQ(index.Pick("spawn", 2, kAny), 3);
  EXPECT_EQ(index.Pick("spawn", 4, kAny), 0);  // nobody has 4 free
  EXPECT_EQ(index.Pick("threads", 1, kAny), 0);
}

// Given workers of equal load, a pick should go to the one filed first,
// and keep doing so when they are refiled (it keeps its place).
TEST(LoadIndexTest, TiesGoToTheWorkerFiledFirst) {
  LoadIndex<int> index;
  index.Put(7, {{"spawn", 2}}, {}, {}, true);
  index.Put(5, {{"spawn", 2}}, {}, {}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 7);
  index.Put(7, {{"spawn", 2}}, {}, {{"spawn", 1}}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 5);
  index.Put(5, {{"spawn", 2}}, {}, {{"spawn", 1}}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 7);
}

// Given a refiled worker (its load went up to full, then down), the pick
// should follow its current load only: an old entry never answers.
TEST(LoadIndexTest, RefilingReplacesTheOldEntry) {
  LoadIndex<int> index;
  index.Put(1, {{"spawn", 1}}, {}, {}, true);
  index.Put(1, {{"spawn", 1}}, {}, {{"spawn", 1}}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 0);  // full
  index.Put(1, {{"spawn", 1}}, {}, {}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 1);
  // A new offer without that backend takes it out of its list.
  index.Put(1, {{"threads", 2}}, {}, {}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 0);
  EXPECT_EQ(index.Pick("threads", 2, kAny), 1);
}

// Given a worker refiled with a new prefetch or new slots (a refile moves
// its entries in place), a pick should follow the new figures: prefetch
// taken on makes a full worker take more, prefetch given up makes it full.
TEST(LoadIndexTest, RefilingFollowsNewPrefetchAndSlots) {
  LoadIndex<int> index;
  index.Put(1, {{"spawn", 2}}, {}, {{"spawn", 2}}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 0);  // full, no prefetch
  index.Put(1, {{"spawn", 2}}, {{"spawn", 2}}, {{"spawn", 2}}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 1);  // 2 more to queue
  index.Put(1, {{"spawn", 2}}, {}, {{"spawn", 2}}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 0);
  index.Put(2, {{"spawn", 4}}, {}, {{"spawn", 2}}, true);  // 0.5
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 2);
  index.Put(1, {{"spawn", 8}}, {}, {{"spawn", 2}}, true);  // 0.25 with more slots
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 1);
  EXPECT_EQ(index.Pick("spawn", 7, kAny), 0);  // 6 free of its 8
  EXPECT_EQ(index.Pick("spawn", 6, kAny), 1);
}

// Given a draining worker, or one removed, a pick should never return it;
// a worker with 0 slots of a backend is not filed under it.
TEST(LoadIndexTest, DrainingRemovedAndZeroSlotWorkersAreNotPicked) {
  LoadIndex<int> index;
  index.Put(1, {{"spawn", 4}}, {}, {}, /*takes_work=*/false);
  index.Put(2, {{"spawn", 0}}, {}, {}, true);
  index.Put(3, {{"spawn", 4}}, {}, {{"spawn", 3}}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 3);
  index.Remove(3);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 0);
  index.Remove(3);  // twice: nothing happens
  index.Put(1, {{"spawn", 4}}, {}, {}, true);  // done draining (a new HELLO)
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 1);
  EXPECT_EQ(index.size(), 2u);
}

// Given the caller's own test (labels, services), a pick should skip the
// workers that fail it and return the least loaded one that passes.
TEST(LoadIndexTest, SkipsWorkersTheCallerRefuses) {
  LoadIndex<int> index;
  for (int w = 1; w <= 100; ++w) index.Put(w, {{"spawn", 100}}, {}, {{"spawn", w}}, true);
  EXPECT_EQ(index.Pick("spawn", 1, [](int w) { return w % 10 == 0; }), 10);
  EXPECT_EQ(index.Pick("spawn", 1, [](int w) { return w > 1000; }), 0);
}

// Given a used count above the slots offered (a worker that came back
// with fewer slots than it runs), the worker should count as full, not
// wrap around to a huge number of free slots.
TEST(LoadIndexTest, MoreInUseThanOfferedIsFull) {
  LoadIndex<int> index;
  index.Put(1, {{"spawn", 2}}, {}, {{"spawn", 5}}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 0);
}

// Given a worker that takes prefetch, a pick should place on it beyond
// its own slots, up to slots + prefetch, but only after every worker with
// a free slot of its own, and never a task needing more than its own slots.
TEST(LoadIndexTest, PrefetchFillsAfterTheFreeSlotsOfEveryWorker) {
  LoadIndex<int> index;
  index.Put(1, {{"spawn", 2}}, {{"spawn", 2}}, {{"spawn", 2}}, true);  // full, 2 to queue
  index.Put(2, {{"spawn", 2}}, {}, {{"spawn", 1}}, true);              // 1 free
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 2);
  index.Put(2, {{"spawn", 2}}, {}, {{"spawn", 2}}, true);  // full, no prefetch
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 1);
  EXPECT_EQ(index.Pick("spawn", 2, kAny), 1);
  EXPECT_EQ(index.Pick("spawn", 3, kAny), 0);  // more than its own slots
  index.Put(1, {{"spawn", 2}}, {{"spawn", 2}}, {{"spawn", 4}}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 0);  // slots and prefetch all used
  // When the worker with prefetch leaves, the fullest load is 1 again.
  index.Remove(1);
  index.Put(2, {{"spawn", 2}}, {}, {{"spawn", 1}}, true);
  EXPECT_EQ(index.Pick("spawn", 1, kAny), 2);
}

}  // namespace
}  // namespace drover
