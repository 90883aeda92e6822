// CoordinatorMetrics, RenderPrometheus and the job views (TaskPage,
// BuildGroups): plain data, no loop, no socket.
#include <gtest/gtest.h>

#include <string>

#include "core/coordinator/job_views.h"
#include "core/coordinator/metrics.h"
#include "tests/unit/spec_test_util.h"

namespace drover {
namespace {

// Given observations on both sides of a bound, the histogram should count
// them cumulatively, with +Inf holding everything and the sum exact.
TEST(HistogramTest, CountsCumulatively) {
  Histogram h({0.1, 1, 10});
  h.Observe(0.05);
  h.Observe(0.1);
  h.Observe(5);
  h.Observe(100);
  h.Observe(-1);  // counts as 0
  EXPECT_EQ(h.CumulativeCount(0), 3u);
  EXPECT_EQ(h.CumulativeCount(1), 3u);
  EXPECT_EQ(h.CumulativeCount(2), 4u);
  EXPECT_EQ(h.count(), 5u);
  EXPECT_DOUBLE_EQ(h.sum(), 105.15);
}

// Given a dispatch and two results, the text should have each family once
// with HELP and TYPE, counters ending in _total, and the histogram's
// buckets, sum and count per backend.
TEST(RenderPrometheusTest, WritesConventionalFamilies) {
  CoordinatorMetrics m;
  m.RecordDispatch("spawn");
  m.RecordResult("spawn", "ok", 0.2);
  m.RecordResult("spawn", "exit", 2);
  m.commit_seconds.Observe(0.001);
  MetricsGauges g;
  g.tasks[{"running", "spawn"}] = 3;
  g.ready[{"spawn", "spawn on zone=\"b\""}] = 7;
  g.workers["ready"] = 1;
  g.rejected["malformed"] = 2;
  const std::string text = RenderPrometheus(m, g);
  EXPECT_NE(text.find("# TYPE drover_dispatches_total counter\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("drover_dispatches_total{backend=\"spawn\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("drover_results_total{backend=\"spawn\",reason=\"exit\"} 1\n"),
            std::string::npos);
  EXPECT_NE(
      text.find(
          "drover_attempt_duration_seconds_bucket{backend=\"spawn\",le=\"0.5\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          "drover_attempt_duration_seconds_bucket{backend=\"spawn\",le=\"+Inf\"} 2\n"),
      std::string::npos);
  EXPECT_NE(text.find("drover_attempt_duration_seconds_count{backend=\"spawn\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("drover_tasks{state=\"running\",backend=\"spawn\"} 3\n"),
            std::string::npos);
  // Quotes in a label value are escaped.
  EXPECT_NE(text.find("class=\"spawn on zone=\\\"b\\\"\"} 7\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("drover_messages_rejected_total{reason=\"malformed\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("drover_store_commit_duration_seconds_count 1\n"),
            std::string::npos);
}

// Given instance names, GroupOfInstance should give the task key.
TEST(JobViewsTest, GroupOfInstanceIsTheKey) {
  EXPECT_EQ(GroupOfInstance("shards[shard=0]"), "shards");
  EXPECT_EQ(GroupOfInstance("build"), "build");
}

// Given a StatusRequest with an unknown task state, FromRequest should
// refuse it naming the state; with a known one, Matches should filter on
// state, group and name.
TEST(JobViewsTest, TaskPageFilters) {
  wire::StatusRequest req;
  req.set_task_state("runing");
  auto bad = TaskPage::FromRequest(req);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'runing'"), std::string::npos);
  req.set_task_state("running");
  req.set_task_group("shards");
  auto page = TaskPage::FromRequest(req);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->Matches(dag::TaskState::kRunning, "shards[i=1]"));
  EXPECT_FALSE(page->Matches(dag::TaskState::kReady, "shards[i=1]"));
  EXPECT_FALSE(page->Matches(dag::TaskState::kRunning, "report"));
}

// Given a job with a matrix task between two plain ones, BuildGroups
// should give one node per key in spec order, the matrix as one node with
// its instance count and counts by state, and needs as keys.
TEST(JobViewsTest, BuildGroupsFoldsMatrixInstances) {
  auto loaded = spec::test_util::Load(R"(
version: 1
name: g
tasks:
  prep: {run: echo}
  shards:
    needs: [prep]
    matrix: {i: [1, 2, 3]}
    run: echo ${matrix.i}
  report: {needs: [shards, prep], run: echo}
)");
  ASSERT_TRUE(loaded.ok());
  const spec::JobSpec& s = *loaded.spec;
  auto groups = BuildGroups(s, [&](uint32_t t) {
    return s.tasks[t].name == "shards[i=2]" ? dag::TaskState::kRunning
                                            : dag::TaskState::kSucceeded;
  });
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].name(), "prep");
  EXPECT_EQ(groups[1].name(), "shards");
  EXPECT_TRUE(groups[1].matrix());
  EXPECT_EQ(groups[1].instances(), 3u);
  EXPECT_EQ(groups[1].counts().running(), 1u);
  EXPECT_EQ(groups[1].counts().succeeded(), 2u);
  ASSERT_EQ(groups[1].needs_size(), 1);
  EXPECT_EQ(groups[1].needs(0), "prep");
  ASSERT_EQ(groups[2].needs_size(), 2);
  EXPECT_EQ(groups[2].needs(0), "prep");  // spec order
  EXPECT_EQ(groups[2].needs(1), "shards");
}

// Given a matrix of one value and a plain task that needs it, BuildGroups
// should mark the first as a matrix of one instance (held as a matrix
// group, not whole) and the second as plain, needing it.
TEST(JobViewsTest, BuildGroupsMarksAOneValueMatrix) {
  auto loaded = spec::test_util::Load(R"(
version: 1
name: g
tasks:
  single: {matrix: {i: [7]}, run: echo}
  plain: {run: echo, needs: [single]}
)");
  ASSERT_TRUE(loaded.ok());
  const spec::JobSpec& s = *loaded.spec;
  auto groups = BuildGroups(s, [](uint32_t) { return dag::TaskState::kWaiting; });
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_TRUE(groups[0].matrix());
  EXPECT_EQ(groups[0].instances(), 1u);
  EXPECT_EQ(groups[0].counts().pending(), 1u);
  EXPECT_FALSE(groups[1].matrix());
  ASSERT_EQ(groups[1].needs_size(), 1);
  EXPECT_EQ(groups[1].needs(0), "single");
}

}  // namespace
}  // namespace drover
