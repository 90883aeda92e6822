// tools/http/json_views: the "task" events of a batched TASK-EVENT.
#include <gtest/gtest.h>

#include "tools/http/json_views.h"

namespace drover::http {
namespace {

// Given a TASK-EVENT whose `more` holds two events and a malformed entry
// (a `more` of its own), TaskEventsJson should give the head and the two
// in order, each with its own fields, and leave the malformed one out.
TEST(HttpJsonViewsTest, ABatchedTaskEventIsOneEventPerEntry) {
  wire::TaskEvent head;
  head.set_job_id("j1");
  head.set_task("a");
  head.set_state("succeeded");
  head.mutable_counts()->set_succeeded(1);
  wire::TaskEvent* b = head.add_more();
  b->set_job_id("j1");
  b->set_task("b");
  b->set_state("failed");
  b->set_attempt(2);
  b->set_detail("exit 3");
  b->mutable_counts()->set_failed(1);
  wire::TaskEvent* bad = head.add_more();
  bad->set_job_id("j1");
  bad->set_task("nested");
  bad->add_more()->set_task("inner");
  wire::TaskEvent* c = head.add_more();
  c->set_job_id("j1");
  c->set_task("c");
  c->set_state("skipped");

  const std::vector<nlohmann::json> events = TaskEventsJson(head);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["task"], "a");
  EXPECT_EQ(events[0]["counts"]["succeeded"], 1);
  EXPECT_EQ(events[1]["task"], "b");
  EXPECT_EQ(events[1]["state"], "failed");
  EXPECT_EQ(events[1]["attempt"], 2);
  EXPECT_EQ(events[1]["detail"], "exit 3");
  EXPECT_EQ(events[1]["counts"]["failed"], 1);
  EXPECT_EQ(events[2]["task"], "c");
  EXPECT_EQ(events[2]["state"], "skipped");
  EXPECT_EQ(events[2]["attempt"], 0);
}

// Given a TASK-EVENT without `more` (a client that did not ask for
// batches gets only these), TaskEventsJson should give it alone.
TEST(HttpJsonViewsTest, ASingleTaskEventIsOneEvent) {
  wire::TaskEvent ev;
  ev.set_job_id("j1");
  ev.set_task("only");
  ev.set_state("running");
  ev.set_worker("w1");
  const std::vector<nlohmann::json> events = TaskEventsJson(ev);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["worker"], "w1");
}

}  // namespace
}  // namespace drover::http
