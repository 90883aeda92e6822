// The store's cache tables (docs/state.md, "Cache"): entries by key and by
// task, decisions, job inputs, a hit's artifacts listed for its job, hit
// ids counted by MaxAttemptId, and gc forgetting entries with artifacts.
#include <gtest/gtest.h>

#include "tests/unit/store_test_util.h"

namespace drover::store {
namespace {

using test_util::MakeAttempt;
using test_util::MakeJob;
using test_util::MakeTask;
using test_util::StoreTest;

CacheEntryRecord Entry(uint64_t attempt_id, const std::string& key,
                       const std::string& job) {
  CacheEntryRecord e;
  e.attempt_id = attempt_id;
  e.key = key;
  e.job_id = job;
  e.job_name = "pipe";
  e.task = "build";
  e.attempt = 1;
  e.parts_json = "[]";
  e.outputs_json = R"({"version":"1.0"})";
  e.artifacts_json = ArtifactsToJson(
      {ArtifactRecord{0, "", "", "out/app", std::string(64, 'a'), 12, 0755, 0}});
  e.created_ms = 1000 + static_cast<int64_t>(attempt_id);
  return e;
}

// Given entries of two keys, CacheEntries should give a key's newest first
// and LatestCacheEntry the task's newest of any key; the artifacts JSON
// should read back.
TEST_F(StoreTest, CacheEntriesByKeyAndByTask) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertCacheEntry(Entry(3, "k1", "j1")).ok());
  ASSERT_TRUE(store->InsertCacheEntry(Entry(7, "k1", "j2")).ok());
  ASSERT_TRUE(store->InsertCacheEntry(Entry(9, "k2", "j3")).ok());
  auto k1 = store->CacheEntries("k1", 8);
  ASSERT_TRUE(k1.ok()) << k1.status().ToString();
  ASSERT_EQ(k1->size(), 2u);
  EXPECT_EQ((*k1)[0].attempt_id, 7u);
  EXPECT_EQ((*k1)[1].job_id, "j1");
  EXPECT_EQ((*k1)[0].outputs_json, R"({"version":"1.0"})");
  auto files = ArtifactsFromJson((*k1)[0].artifacts_json);
  ASSERT_TRUE(files.has_value());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "out/app");
  EXPECT_EQ((*files)[0].mode, 0755u);
  EXPECT_EQ((*files)[0].size, 12u);
  auto latest = store->LatestCacheEntry("pipe", "build");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->key, "k2");
  auto none = store->LatestCacheEntry("pipe", "other");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(ArtifactsFromJson("{}").has_value());
}

// Given a task that ran (attempt 4, with an artifact) and then, in the same
// job, was a cache hit (id 5) with another artifact, Artifacts should list
// the hit's; MaxAttemptId should count the hit's id; the decision and the
// job's inputs should read back.
TEST_F(StoreTest, CacheHitArtifactsAndDecisions) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store->InsertJob(MakeJob("j1", "pipe", 1000), {MakeTask("j1", 0, "build")}).ok());
  AttemptRecord a = MakeAttempt(4, "j1", "build", 1);
  ASSERT_TRUE(store->InsertAttempt(a).ok());
  AttemptOutcome ok;
  ASSERT_TRUE(store->FinishAttempt(4, "w", ok, 2000).ok());
  ASSERT_TRUE(store
                  ->InsertArtifact(
                      {4, "j1", "build", "old.txt", std::string(64, 'b'), 1, 0644, 2000})
                  .ok());
  auto ran = store->Artifacts("j1", "build");
  ASSERT_TRUE(ran.ok());
  ASSERT_EQ(ran->size(), 1u);
  EXPECT_EQ((*ran)[0].path, "old.txt");

  CacheDecisionRecord d;
  d.job_id = "j1";
  d.task = "build";
  d.key = "k";
  d.parts_json = "[]";
  d.cached = true;
  d.hit_id = 5;
  d.source_job = "j0";
  d.source_task = "build";
  d.source_attempt = 2;
  d.explanation = "cached: ...";
  d.decided_ms = 3000;
  ASSERT_TRUE(store->PutCacheDecision(d).ok());
  ASSERT_TRUE(store
                  ->InsertArtifact(
                      {5, "j1", "build", "new.txt", std::string(64, 'c'), 1, 0644, 3000})
                  .ok());
  auto hit = store->Artifacts("j1", "build");
  ASSERT_TRUE(hit.ok());
  ASSERT_EQ(hit->size(), 1u);
  EXPECT_EQ((*hit)[0].path, "new.txt");
  auto max_id = store->MaxAttemptId();
  ASSERT_TRUE(max_id.ok());
  EXPECT_EQ(*max_id, 5u);

  auto read = store->CacheDecision("j1", "build");
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_TRUE((*read)->cached);
  EXPECT_EQ((*read)->hit_id, 5u);
  EXPECT_EQ((*read)->source_job, "j0");
  EXPECT_EQ((*read)->source_attempt, 2u);
  EXPECT_EQ((*read)->explanation, "cached: ...");

  ASSERT_TRUE(store->PutJobInputs({"j1", true, R"({"a.c":[["a.c","x"]]})"}).ok());
  auto inputs = store->JobInputs("j1");
  ASSERT_TRUE(inputs.ok() && inputs->has_value());
  EXPECT_TRUE((*inputs)->no_cache);
  EXPECT_EQ((*inputs)->inputs_json, R"({"a.c":[["a.c","x"]]})");
}

// Given gc forgetting a job's artifacts, its cache entries should go too
// (their blobs may be removed), and the other jobs' stay.
TEST_F(StoreTest, ForgetArtifactsForgetsCacheEntries) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertJob(MakeJob("j-old", "pipe", 1000), {}).ok());
  ASSERT_TRUE(store->InsertJob(MakeJob("j-new", "pipe", 2000), {}).ok());
  ASSERT_TRUE(store->InsertCacheEntry(Entry(1, "k", "j-old")).ok());
  ASSERT_TRUE(store->InsertCacheEntry(Entry(2, "k", "j-new")).ok());
  ASSERT_TRUE(store->ForgetArtifacts(/*keep_last=*/1, /*before_ms=*/0).ok());
  auto left = store->CacheEntries("k", 8);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].job_id, "j-new");
}

}  // namespace
}  // namespace drover::store
