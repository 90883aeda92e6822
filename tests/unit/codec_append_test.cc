// Tests of the codec's appenders (core/protocol/codec.h): a batch entry,
// an ACK or starts appended to an encoded body as bytes, each checked
// against what protobuf itself makes of the whole message
// (docs/protocol.md, "Batches", ACK and RESULT). No sockets.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/protocol/codec.h"

namespace drover::protocol {
namespace {

// Binary content: every byte value, NULs included.
std::string EveryByteValue() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  s += std::string("\0\0tail\0", 7);
  return s;
}

// Given a head and entries appended as bytes (empty outputs, binary
// outputs, one of 200 bytes whose length takes two varint bytes), should
// give exactly the bytes protobuf gives for the same batch built as a
// message, and parse back to it.
TEST(ResultBatchTest, AppendedEntriesAreTheSerializedBatch) {
  wire::Result head;
  head.set_attempt_id(1);
  head.set_reason("ok");
  head.set_worker("w1");
  (*head.mutable_outputs())["k"] = "v";
  std::string appended = head.SerializeAsString();
  wire::Result expected = head;
  const std::vector<std::pair<std::string, std::string>> outputs = {
      {"", ""}, {"hello\n", ""}, {"", EveryByteValue()}, {std::string(200, 'x'), "e"}};
  uint64_t id = 2;
  for (const auto& [out, err] : outputs) {
    wire::Result entry;
    entry.set_attempt_id(id++);
    entry.set_reason(err.empty() ? "ok" : "exit");
    entry.set_exit_code(err.empty() ? 0 : 3);
    entry.set_result_json("[1,2]");
    entry.mutable_stdout()->set_bytes(out.size());
    protocol::AppendResultEntry(&appended, entry.SerializeAsString(), out, err);
    wire::Result* e = expected.add_more();
    *e = entry;
    e->set_stdout_data(out);
    e->set_stderr_data(err);
  }
  EXPECT_EQ(appended, expected.SerializeAsString());
  wire::Result parsed;
  ASSERT_TRUE(parsed.ParseFromString(appended));
  ASSERT_EQ(parsed.more_size(), 4);
  EXPECT_EQ(parsed.more(2).stderr_data(), EveryByteValue());
  EXPECT_EQ(parsed.more(3).stdout_data(), std::string(200, 'x'));
  EXPECT_EQ(parsed.more(3).attempt_id(), 5u);
  EXPECT_EQ(parsed.outputs().at("k"), "v");
}

// Given a TASK-EVENT's encoded head and events appended to it one by one
// (the coordinator's batches for a client), the bytes should be those of
// the head with the events in `more`, and parse back in order.
TEST(TaskEventBatchTest, AppendedEntriesAreTheHeadWithMore) {
  wire::TaskEvent head;
  head.set_job_id("j1");
  head.set_task("a");
  head.set_state("succeeded");
  head.mutable_counts()->set_total(3);
  std::string appended = head.SerializeAsString();
  wire::TaskEvent expected = head;
  for (const std::string& task : {std::string("b"), std::string(300, 't')}) {
    wire::TaskEvent entry;
    entry.set_job_id("j1");
    entry.set_task(task);
    entry.set_state("failed");
    entry.set_detail("exit 3");
    entry.mutable_counts()->set_failed(1);
    protocol::AppendTaskEventEntry(&appended, entry.SerializeAsString());
    *expected.add_more() = entry;
  }
  EXPECT_EQ(appended, expected.SerializeAsString());
  wire::TaskEvent parsed;
  ASSERT_TRUE(parsed.ParseFromString(appended));
  ASSERT_EQ(parsed.more_size(), 2);
  EXPECT_EQ(parsed.task(), "a");
  EXPECT_EQ(parsed.more(0).task(), "b");
  EXPECT_EQ(parsed.more(1).task(), std::string(300, 't'));
  EXPECT_EQ(parsed.more(1).counts().failed(), 1u);
}

// Given a DISPATCH's encoded body and the ids of an ACK appended to it
// (docs/protocol.md, ACK), the body should parse as the same DISPATCH with
// those `acks`, its `more` entries untouched (a field may come after a
// higher-numbered one); with no `more`, it should be the very bytes
// SerializeToString gives. No ids leave the body as it was.
TEST(DispatchAcksTest, AppendedAcksParseAsTheDispatchsAcks) {
  wire::Dispatch head;
  head.set_attempt_id(7);
  head.set_job_id("j1");
  head.set_task("t");
  head.set_backend("threads");
  head.set_payload(std::string("\0\xff", 2));
  const std::vector<uint64_t> ids = {1, 300, uint64_t{1} << 40};

  std::string body = head.SerializeAsString();
  protocol::AppendDispatchAcks(&body, {});
  EXPECT_EQ(body, head.SerializeAsString());
  protocol::AppendDispatchAcks(&body, ids);
  wire::Dispatch expected = head;
  for (uint64_t id : ids) expected.add_acks(id);
  EXPECT_EQ(body, expected.SerializeAsString());

  wire::Dispatch entry = head;
  entry.set_attempt_id(8);
  *head.add_more() = entry;
  body = head.SerializeAsString();
  protocol::AppendDispatchAcks(&body, ids);
  wire::Dispatch parsed;
  ASSERT_TRUE(parsed.ParseFromString(body));
  EXPECT_EQ(std::vector<uint64_t>(parsed.acks().begin(), parsed.acks().end()), ids);
  ASSERT_EQ(parsed.more_size(), 1);
  EXPECT_EQ(parsed.more(0).attempt_id(), 8u);
  EXPECT_EQ(parsed.more(0).acks_size(), 0);
  EXPECT_EQ(parsed.attempt_id(), 7u);
  EXPECT_EQ(parsed.payload(), std::string("\0\xff", 2));
}

// Given a RESULT's encoded head with a batch entry and starts appended
// (docs/protocol.md, RESULT), it should parse with those `started` in the
// head and none in the entry.
TEST(ResultStartsTest, AppendedStartsParseAsTheHeadsStarted) {
  wire::Result head;
  head.set_attempt_id(3);
  head.set_reason("ok");
  wire::Result entry = head;
  entry.set_attempt_id(4);
  *head.add_more() = entry;
  std::string body = head.SerializeAsString();
  protocol::AppendResultStarts(&body, {9, 10});
  wire::Result parsed;
  ASSERT_TRUE(parsed.ParseFromString(body));
  EXPECT_EQ(std::vector<uint64_t>(parsed.started().begin(), parsed.started().end()),
            (std::vector<uint64_t>{9, 10}));
  ASSERT_EQ(parsed.more_size(), 1);
  EXPECT_EQ(parsed.more(0).started_size(), 0);
  EXPECT_EQ(parsed.attempt_id(), 3u);
}

}  // namespace
}  // namespace drover::protocol
