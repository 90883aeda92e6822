// Unit tests of the state store's jobs: the latest job (by name), jobs by
// state, log paths of unsafe task names, a job of 100,000 tasks, the
// newest jobs first. Real database files in a fresh directory per test.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/store/store.h"
#include "tests/unit/store_test_util.h"

namespace drover::store {
namespace {

namespace fs = std::filesystem;
using std::chrono::microseconds;
using test_util::FullOutcome;
using test_util::MakeAttempt;
using test_util::MakeJob;
using test_util::MakeTask;
using test_util::StoreTest;
using test_util::Tie;

// Given jobs created at various times, LatestJob should return the newest
// (ties broken by the larger id), overall or of one name, and none if absent;
// LatestJobId the same job's id.
TEST_F(StoreTest, LatestJobWithAndWithoutName) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  Result<std::optional<JobRecord>> latest = store->LatestJob();
  ASSERT_TRUE(latest.ok());
  EXPECT_FALSE(latest->has_value());

  ASSERT_TRUE(store->InsertJob(MakeJob("j-a1", "a", 100), {}).ok());
  ASSERT_TRUE(store->InsertJob(MakeJob("j-a2", "a", 300), {}).ok());
  ASSERT_TRUE(store->InsertJob(MakeJob("j-b3", "b", 300), {}).ok());
  ASSERT_TRUE(store->InsertJob(MakeJob("j-b1", "b", 200), {}).ok());

  latest = store->LatestJob();
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->id, "j-b3");
  latest = store->LatestJob("a");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->id, "j-a2");
  latest = store->LatestJob("b");
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->id, "j-b3");
  latest = store->LatestJob("c");
  ASSERT_TRUE(latest.ok());
  EXPECT_FALSE(latest->has_value());
  for (const char* name : {"", "a", "b", "c"}) {
    Result<std::optional<JobRecord>> job = store->LatestJob(name);
    Result<std::optional<std::string>> id = store->LatestJobId(name);
    ASSERT_TRUE(job.ok() && id.ok());
    EXPECT_EQ(id->has_value(), job->has_value()) << name;
    if (job->has_value() && id->has_value()) {
      EXPECT_EQ(**id, (*job)->id) << name;
    }
  }
}

// Given jobs in several states, JobsInState should list those in one state
// by creation, and JobStateOf say each one's; SetJobState of an unknown job
// should fail with not-found.
TEST_F(StoreTest, JobsInStateFollowsSetJobState) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->InsertJob(MakeJob("j3", "x", 30), {}).ok());
  ASSERT_TRUE(store->InsertJob(MakeJob("j1", "x", 10), {}).ok());
  ASSERT_TRUE(store->InsertJob(MakeJob("j2", "x", 20), {}).ok());
  ASSERT_TRUE(store->SetJobState("j2", "succeeded", 500).ok());

  Result<std::vector<JobRecord>> running = store->JobsInState("running");
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(running->size(), 2u);
  EXPECT_EQ((*running)[0].id, "j1");
  EXPECT_EQ((*running)[1].id, "j3");
  Result<std::vector<JobRecord>> done = store->JobsInState("succeeded");
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(done->size(), 1u);
  EXPECT_EQ((*done)[0].finished_ms, 500);
  for (const auto& [id, want] : std::vector<std::pair<std::string, std::string>>{
           {"j1", "running"}, {"j2", "succeeded"}}) {
    Result<std::optional<std::string>> state = store->JobStateOf(id);
    ASSERT_TRUE(state.ok() && state->has_value()) << id;
    EXPECT_EQ(**state, want) << id;
  }
  Result<std::optional<std::string>> unknown = store->JobStateOf("nope");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
  EXPECT_EQ(store->SetJobState("nope", "failed", 1).code(), StatusCode::kNotFound);
  Result<std::optional<JobRecord>> none = store->GetJob("nope");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

// Given task names with '/', "..", a leading '.', '%' and non-ASCII bytes,
// LogPath should encode them so that every path stays in logs/<job>/.
TEST_F(StoreTest, LogPathEncodesUnsafeNames) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const fs::path logs = fs::absolute(dir_) / "logs";
  EXPECT_EQ(store->LogPath("j1", "build", 1, false), logs / "j1" / "build" / "1.out");
  EXPECT_EQ(store->LogPath("j1", "build", 12, true), logs / "j1" / "build" / "12.err");

  const std::pair<std::string, std::string> cases[] = {
      {"shards[shard=0]", "shards[shard=0]"},
      {"a-b_c.d,e", "a-b_c.d,e"},
      {"../x", "%2E.%2Fx"},
      {"a/b", "a%2Fb"},
      {".", "%2E"},
      {"..", "%2E."},
      {".hidden", "%2Ehidden"},
      {"a%2Fb", "a%252Fb"},
      {"sp ace", "sp%20ace"},
      {"\xC3\xBC", "%C3%BC"},
      {std::string("n\0l", 3), "n%00l"},
      {"", "%"},
  };
  for (const auto& [name, encoded] : cases) {
    fs::path p = store->LogPath("j1", name, 1, false);
    EXPECT_EQ(p, logs / "j1" / encoded / "1.out") << name;
    EXPECT_EQ(p.lexically_normal(), p) << name;
  }
  // The job id is encoded the same way.
  EXPECT_EQ(store->LogPath("../..", "t", 1, false), logs / "%2E.%2F.." / "t" / "1.out");

  // Long names are shortened, and two that share a long prefix stay apart.
  std::string long_a(300, 'x');
  std::string long_b = long_a + "y";
  fs::path pa = store->LogPath("j1", long_a, 1, false);
  fs::path pb = store->LogPath("j1", long_b, 1, false);
  EXPECT_LE(pa.parent_path().filename().string().size(), 200u);
  EXPECT_NE(pa, pb);
  EXPECT_EQ(pa.parent_path().parent_path(), logs / "j1");
}

// Given a job of 100,000 tasks, InsertJob should store them all (the time it
// took is recorded as a test property, not asserted).
TEST_F(StoreTest, InsertJobOfHundredThousandTasks) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  constexpr uint32_t kTasks = 100'000;
  std::vector<TaskRecord> tasks;
  tasks.reserve(kTasks);
  for (uint32_t i = 0; i < kTasks; ++i) {
    tasks.push_back(MakeTask("big", i, "shards[shard=" + std::to_string(i) + "]"));
  }
  auto start = std::chrono::steady_clock::now();
  Status s = store->InsertJob(MakeJob("big", "big", 1), tasks);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(s.ok()) << s.ToString();
  RecordProperty(
      "insert_ms",
      static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));

  Result<std::vector<TaskRecord>> got = store->Tasks("big");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), kTasks);
  for (uint32_t i = 0; i < kTasks; i += 9'973) {
    EXPECT_EQ(Tie((*got)[i]), Tie(tasks[i])) << i;
  }
  EXPECT_EQ(Tie(got->back()), Tie(tasks.back()));
}

// Given three jobs created at different times, RecentJobs should return
// them newest first, at most `limit` of them.
TEST(StoreRecentJobsTest, NewestFirstUpToLimit) {
  std::string tmpl = (fs::temp_directory_path() / "drover-store-recent.XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const fs::path root = tmpl;
  {
    auto opened = Store::Open(root / "state");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Store& store = **opened;
    ASSERT_TRUE(store.InsertJob(MakeJob("j-old", "a", 1000), {}).ok());
    ASSERT_TRUE(store.InsertJob(MakeJob("j-new", "b", 3000), {}).ok());
    ASSERT_TRUE(store.InsertJob(MakeJob("j-mid", "a", 2000), {}).ok());
    auto two = store.RecentJobs(2);
    ASSERT_TRUE(two.ok()) << two.status().ToString();
    ASSERT_EQ(two->size(), 2u);
    EXPECT_EQ((*two)[0].id, "j-new");
    EXPECT_EQ((*two)[1].id, "j-mid");
    auto all = store.RecentJobs(10);
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 3u);
    EXPECT_EQ((*all)[2].id, "j-old");
  }
  std::error_code ec;
  fs::remove_all(root, ec);
}

}  // namespace
}  // namespace drover::store
