// Tests of the frame codec (core/protocol/codec.h) against docs/protocol.md
// (the commands' bytes and names, and the outcome's conversion:
// command_convert_test.cc).
//
// Sockets are inproc:// inside one zmq::context_t per test: no network, no
// processes. Every wait is a zmq_poll with a deadline, never a sleep.
#include "core/protocol/codec.h"
#include "core/protocol/convert.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <zmq.hpp>

namespace drover::protocol {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr auto kDeadline = std::chrono::seconds(5);

std::string Header(uint8_t version = kVersion) {
  std::string h(kHeaderPrefix);
  h.push_back(static_cast<char>(version));
  return h;
}

std::string CommandFrame(Command c) { return std::string(1, static_cast<char>(c)); }

// Binary content: every byte value, NULs included.
std::string AllBytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  s += std::string("\0\0tail\0", 7);
  return s;
}

// Waits until `socket` has a message to read, up to kDeadline.
bool WaitReadable(zmq::socket_t& socket) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    zmq_pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    const int rc = zmq_poll(&item, 1, static_cast<long>(left.count()));
    if (rc > 0 && (item.revents & ZMQ_POLLIN)) return true;
    if (rc < 0 && zmq_errno() != EINTR) return false;
  }
}

// Sends raw frames, bypassing the codec, to build malformed messages.
void SendRaw(zmq::socket_t& socket, const std::vector<std::string>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const bool last = i + 1 == frames.size();
    socket.send(zmq::buffer(frames[i]), last ? zmq::send_flags::none : zmq::send_flags::sndmore);
  }
}

// Receives one raw multipart message after waiting for it.
std::vector<std::string> ReceiveRaw(zmq::socket_t& socket) {
  std::vector<std::string> frames;
  if (!WaitReadable(socket)) return frames;
  zmq::message_t frame;
  do {
    if (!socket.recv(frame, zmq::recv_flags::none)) break;
    frames.emplace_back(frame.data<char>(), frame.size());
  } while (frame.more());
  return frames;
}

// A connected PAIR pair (`a` bound, `b` connected): the DEALER-side view of
// the codec (no routing id frame).
class CodecTest : public ::testing::Test {
 protected:
  CodecTest() : a_(ctx_, zmq::socket_type::pair), b_(ctx_, zmq::socket_type::pair) {
    a_.set(zmq::sockopt::linger, 0);
    b_.set(zmq::sockopt::linger, 0);
    a_.bind("inproc://codec-test");
    b_.connect("inproc://codec-test");
  }

  // Waits for and receives one message on `b_`; nullopt means the deadline
  // passed or Receive found nothing after poll said there was something.
  std::optional<Result<Message>> ReceiveOne(const Limits& limits = {}) {
    if (!WaitReadable(b_)) return std::nullopt;
    return Receive(b_, /*router=*/false, limits);
  }

  // Sends `body` as `command` with `payloads` from a_ to b_ and returns the
  // parsed body, checking the command and payload frames on the way.
  template <typename Proto>
  Proto RoundTrip(Command command, const Proto& body,
                  const std::vector<std::string>& payloads = {}) {
    Message out = Make(command, body);
    out.payloads = payloads;
    EXPECT_TRUE(Send(a_, out).ok());
    auto in = ReceiveOne();
    EXPECT_TRUE(in.has_value()) << "nothing received for " << CommandName(command);
    if (!in.has_value()) return Proto();
    EXPECT_TRUE(in->ok()) << in->status().ToString();
    if (!in->ok()) return Proto();
    EXPECT_EQ(in->value().command, command);
    EXPECT_TRUE(in->value().routing_id.empty());
    EXPECT_EQ(in->value().payloads, payloads);
    auto parsed = Parse<Proto>(in->value());
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    if (!parsed.ok()) return Proto();
    EXPECT_TRUE(MessageDifferencer::Equals(*parsed, body))
        << "sent:\n" << body.DebugString() << "received:\n" << parsed->DebugString();
    return *parsed;
  }

  // Sends `frames` raw, then a good DISCONNECT; expects the first to be
  // rejected with an error containing `reason` and the second to arrive
  // intact (the bad message was consumed whole).
  void ExpectRejectedThenNextReceived(const std::vector<std::string>& frames,
                                      const std::string& reason, const Limits& limits = {}) {
    SendRaw(a_, frames);
    wire::Disconnect good_body;
    good_body.set_reason("after the bad one");
    Message good = Make(Command::kDisconnect, good_body);
    good.payloads = {"p1"};
    ASSERT_TRUE(Send(a_, good).ok());

    auto bad = ReceiveOne(limits);
    ASSERT_TRUE(bad.has_value());
    ASSERT_FALSE(bad->ok()) << "a malformed message was accepted";
    EXPECT_EQ(bad->status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bad->status().message().find(reason), std::string::npos)
        << "error was: " << bad->status().message();

    auto next = ReceiveOne(limits);
    ASSERT_TRUE(next.has_value());
    ASSERT_TRUE(next->ok()) << next->status().ToString();
    EXPECT_EQ(next->value().command, Command::kDisconnect);
    EXPECT_EQ(next->value().payloads, std::vector<std::string>{"p1"});
    auto parsed = Parse<wire::Disconnect>(next->value());
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed->reason(), "after the bad one");

    // And nothing else is left over from the bad message.
    EXPECT_FALSE(Receive(b_, false, limits).has_value());
  }

  zmq::context_t ctx_;
  zmq::socket_t a_;
  zmq::socket_t b_;
};

// ---- the wire format itself ---------------------------------------------

// Given a message with two payloads, should put header, command, body and
// the payloads in frames 0..4 exactly as docs/protocol.md says.
TEST_F(CodecTest, SendWritesTheDocumentedFrames) {
  wire::Ack ack;
  ack.add_attempt_ids(42);
  Message m = Make(Command::kAck, ack);
  m.payloads = {"one", ""};
  ASSERT_TRUE(Send(a_, m).ok());

  const std::vector<std::string> frames = ReceiveRaw(b_);
  ASSERT_EQ(frames.size(), 5u);
  EXPECT_EQ(frames[0], std::string("DROVER\x02", 7));
  EXPECT_EQ(frames[1], std::string("\x05", 1));
  EXPECT_EQ(frames[2], ack.SerializeAsString());
  EXPECT_EQ(frames[3], "one");
  EXPECT_EQ(frames[4], "");
}

// Given an empty HEARTBEAT, should still send the body frame, empty.
TEST_F(CodecTest, EmptyBodyIsAnEmptyFrame) {
  ASSERT_TRUE(Send(a_, Make(Command::kHeartbeat, wire::Heartbeat())).ok());
  const std::vector<std::string> frames = ReceiveRaw(b_);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[1], CommandFrame(Command::kHeartbeat));
  EXPECT_EQ(frames[2], "");
}

// Given the wire constants, should match the values docs/protocol.md states.
TEST(CodecConstantsTest, LimitsAndHeaderMatchTheSpecification) {
  const Limits limits;
  EXPECT_EQ(limits.max_body, 4u * 1024 * 1024);
  EXPECT_EQ(limits.max_payload_frames, 4u);
  EXPECT_EQ(limits.max_message, 64u * 1024 * 1024);
  EXPECT_EQ(kVersion, 2);
  EXPECT_EQ(kHeaderPrefix, "DROVER");
}

// ---- round trips of every command ----------------------------------------

// Given a HELLO with every field set, should round trip it field for field.
TEST_F(CodecTest, HelloRoundTrips) {
  wire::Hello hello;
  hello.set_name("w1");
  hello.set_hostname("host-a");
  hello.set_pid(4242);
  hello.set_session("5f1c0ffee");
  (*hello.mutable_slots())["spawn"] = 8;
  (*hello.mutable_slots())["threads"] = 2;
  (*hello.mutable_labels())["gpu"] = "a100";
  (*hello.mutable_labels())["zone"] = "eu";
  hello.add_running(7);
  hello.add_running(uint64_t{1} << 40);
  hello.set_heartbeat_ms(1000);
  hello.set_version("0.1.0");
  const wire::Hello got = RoundTrip(Command::kHello, hello);
  EXPECT_EQ(got.slots().at("spawn"), 8u);
  EXPECT_EQ(got.running_size(), 2);
}

// Given a WELCOME, should round trip it.
TEST_F(CodecTest, WelcomeRoundTrips) {
  wire::Welcome welcome;
  welcome.set_coordinator("c-01");
  welcome.set_heartbeat_ms(1000);
  welcome.set_liveness(5);
  welcome.add_unknown(9);
  RoundTrip(Command::kWelcome, welcome);
}

// Given a DISPATCH with a binary payload and limits, should round trip it.
TEST_F(CodecTest, DispatchRoundTrips) {
  wire::Dispatch d;
  d.set_attempt_id(123456789012345);
  d.set_job_id("20261126-083342-7f3a");
  d.set_task("shards[shard=3]");
  d.set_attempt(2);
  d.set_backend("spawn");
  // A backend's message, opaque to the codec: any bytes, NULs included.
  d.set_payload(std::string("\x0a\x02sh\x00\xff héllo", 13));
  d.set_timeout_ms(30000);
  d.set_kill_grace_ms(5000);
  d.set_output_limit(8u << 20);
  RoundTrip(Command::kDispatch, d);
}

// Given a RESULT with an empty stdout and a binary stderr full of NULs,
// should keep both payload frames byte-exact and in order.
TEST_F(CodecTest, ResultRoundTripsWithBinaryPayloads) {
  wire::Result r;
  r.set_attempt_id(77);
  r.set_reason("signal");
  r.set_exit_code(-1);
  r.set_signal(9);
  r.set_message("killed");
  r.set_wall_us(1500);
  r.set_cpu_user_us(700);
  r.set_cpu_sys_us(300);
  r.set_max_rss_kb(2048);
  r.mutable_stdout()->set_bytes(0);
  r.mutable_stderr()->set_bytes(AllBytes().size());
  r.mutable_stderr()->set_dropped(10);
  r.set_result_json("{\"n\": 1}");
  r.set_worker("w1");
  RoundTrip(Command::kResult, r, {std::string(), AllBytes()});
}

// Given a RESULT with a 1 MiB stdout, should carry it unchanged.
TEST_F(CodecTest, ResultRoundTripsWithLargePayload) {
  wire::Result r;
  r.set_attempt_id(1);
  r.set_reason("ok");
  std::string big(1u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
  RoundTrip(Command::kResult, r, {big, "err"});
}

// Given ACK and CANCEL with several attempt ids, should round trip them.
TEST_F(CodecTest, AckAndCancelRoundTrip) {
  wire::Ack ack;
  ack.add_attempt_ids(1);
  ack.add_attempt_ids(2);
  ack.add_attempt_ids(UINT64_MAX);
  RoundTrip(Command::kAck, ack);
  wire::Cancel cancel;
  cancel.add_attempt_ids(3);
  RoundTrip(Command::kCancel, cancel);
}

// Given HEARTBEAT and DISCONNECT, should round trip them.
TEST_F(CodecTest, HeartbeatAndDisconnectRoundTrip) {
  RoundTrip(Command::kHeartbeat, wire::Heartbeat());
  wire::Disconnect d;
  d.set_reason("drained");
  d.set_drained(true);
  RoundTrip(Command::kDisconnect, d);
}

// Given a SUBMIT carrying YAML text, should round trip it.
TEST_F(CodecTest, SubmitRoundTrips) {
  wire::Submit s;
  s.set_spec_file("configs/examples/quickstart.yaml");
  s.set_spec_text("version: 1\ntasks:\n  a: {run: [true]}\n");
  s.set_resume(true);
  s.set_watch(true);
  s.set_cwd("/home/u/project");
  RoundTrip(Command::kSubmit, s);
}

// Given a refused SUBMITTED, should round trip its errors.
TEST_F(CodecTest, SubmittedRoundTrips) {
  wire::Submitted s;
  s.set_job_id("20261126-083342-7f3a");
  s.add_errors("job.yaml:3:5: unknown key 'neds' (did you mean 'needs'?)");
  s.set_tasks(10);
  s.set_carried_over(4);
  RoundTrip(Command::kSubmitted, s);
}

// Given TASK-EVENT and JOB-EVENT with counts, should round trip them.
TEST_F(CodecTest, EventsRoundTrip) {
  wire::TaskEvent t;
  t.set_job_id("j");
  t.set_task("build");
  t.set_state("failed");
  t.set_attempt(3);
  t.set_reason("exit");
  t.set_detail("exit 2");
  t.set_wall_us(99);
  t.set_worker("w2");
  t.mutable_counts()->set_total(5);
  t.mutable_counts()->set_failed(1);
  t.mutable_counts()->set_pending(4);
  RoundTrip(Command::kTaskEvent, t);
  wire::JobEvent j;
  j.set_job_id("j");
  j.set_state("failed");
  j.mutable_counts()->set_total(5);
  j.mutable_counts()->set_other(4);
  RoundTrip(Command::kJobEvent, j);
}

// Given an ERROR, should round trip it.
TEST_F(CodecTest, ErrorRoundTrips) {
  wire::Error e;
  e.set_message("protocol version 1 is not supported (this is 2)");
  RoundTrip(Command::kError, e);
}

// ---- routing ----------------------------------------------------------------

// Given a DEALER talking to a ROUTER, should hand the ROUTER the DEALER's
// routing id and deliver a reply addressed to it, without the id frame.
TEST(CodecRouterTest, RoutingIdRoundTrips) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  zmq::socket_t named(ctx, zmq::socket_type::dealer);
  zmq::socket_t anonymous(ctx, zmq::socket_type::dealer);
  for (auto* s : {&router, &named, &anonymous}) s->set(zmq::sockopt::linger, 0);
  router.bind("inproc://router");
  named.set(zmq::sockopt::routing_id, "worker-7");
  named.connect("inproc://router");
  anonymous.connect("inproc://router");  // ZeroMQ picks a binary id

  for (auto* dealer : {&named, &anonymous}) {
    wire::Hello hello;
    hello.set_name(dealer == &named ? "named" : "anonymous");
    ASSERT_TRUE(Send(*dealer, Make(Command::kHello, hello)).ok());
    ASSERT_TRUE(WaitReadable(router));
    auto in = Receive(router, /*router=*/true);
    ASSERT_TRUE(in.has_value() && in->ok());
    ASSERT_FALSE(in->value().routing_id.empty());
    if (dealer == &named) {
      EXPECT_EQ(in->value().routing_id, "worker-7");
    } else {
      // libzmq's generated ids are binary and start with a NUL byte.
      EXPECT_EQ(in->value().routing_id[0], '\0');
    }
    auto parsed = Parse<wire::Hello>(in->value());
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed->name(), hello.name());

    wire::Welcome welcome;
    welcome.set_coordinator("to " + hello.name());
    Message reply = Make(Command::kWelcome, welcome);
    reply.routing_id = in->value().routing_id;
    reply.payloads = {std::string("\0x", 2)};
    ASSERT_TRUE(Send(router, reply).ok());
    ASSERT_TRUE(WaitReadable(*dealer));
    auto back = Receive(*dealer, /*router=*/false);
    ASSERT_TRUE(back.has_value() && back->ok());
    EXPECT_TRUE(back->value().routing_id.empty());
    EXPECT_EQ(back->value().command, Command::kWelcome);
    EXPECT_EQ(back->value().payloads, reply.payloads);
    EXPECT_EQ(Parse<wire::Welcome>(back->value())->coordinator(), "to " + hello.name());
  }
}

// Given a ROUTER with ROUTER_MANDATORY and a routing id nobody has, should
// return kUnavailable rather than throw or drop silently.
TEST(CodecRouterTest, SendToUnknownPeerIsUnavailable) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::router_mandatory, 1);
  router.bind("inproc://router");
  Message m = Make(Command::kHeartbeat, wire::Heartbeat());
  m.routing_id = "nobody";
  const Status s = Send(router, m);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
}

// Given a DEALER with no peer at all, should return kUnavailable at once
// instead of blocking.
TEST(CodecRouterTest, SendWithoutPeerIsUnavailable) {
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  const Status s = Send(dealer, Make(Command::kHeartbeat, wire::Heartbeat()));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
}

// Given a malformed message arriving on a ROUTER, should reject it and
// still deliver the next one with its routing id.
TEST(CodecRouterTest, MalformedOnRouterIsDroppedWhole) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  router.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::linger, 0);
  router.bind("inproc://router");
  dealer.set(zmq::sockopt::routing_id, "w");
  dealer.connect("inproc://router");

  SendRaw(dealer, {"HTTP/1.1", "x", "y"});
  ASSERT_TRUE(Send(dealer, Make(Command::kHeartbeat, wire::Heartbeat())).ok());
  ASSERT_TRUE(WaitReadable(router));
  auto bad = Receive(router, true);
  ASSERT_TRUE(bad.has_value());
  EXPECT_FALSE(bad->ok());
  ASSERT_TRUE(WaitReadable(router));
  auto good = Receive(router, true);
  ASSERT_TRUE(good.has_value() && good->ok()) << good->status().ToString();
  EXPECT_EQ(good->value().routing_id, "w");
  EXPECT_EQ(good->value().command, Command::kHeartbeat);
}

// ---- nothing queued ---------------------------------------------------------

// Given an empty queue, should return nullopt without blocking, on both a
// PAIR/DEALER-style socket and a ROUTER.
TEST_F(CodecTest, ReceiveReturnsNulloptWhenNothingIsQueued) {
  EXPECT_FALSE(Receive(b_, false).has_value());
  zmq::socket_t router(ctx_, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("inproc://empty-router");
  EXPECT_FALSE(Receive(router, true).has_value());
}

// ---- malformed messages -------------------------------------------------------

// Given a first frame that is not "DROVER"+version, should reject it.
TEST_F(CodecTest, BadHeaderIsRejected) {
  ExpectRejectedThenNextReceived({"GET / HTTP/1.1", CommandFrame(Command::kHello), ""},
                                 "bad header");
}

// Given the 6-byte prefix without a version byte, should reject it.
TEST_F(CodecTest, HeaderWithoutVersionByteIsRejected) {
  ExpectRejectedThenNextReceived({"DROVER", CommandFrame(Command::kHello), ""}, "bad header");
}

// Given a single-frame message that is not drover, should reject it.
TEST_F(CodecTest, SingleForeignFrameIsRejected) {
  ExpectRejectedThenNextReceived({std::string("\xff\x00\x00\x01", 4)}, "bad header");
}

// Given version byte 1 (the version before this one), should reject it
// naming both versions.
TEST_F(CodecTest, WrongVersionIsRejectedNamingBothVersions) {
  ExpectRejectedThenNextReceived({Header(1), CommandFrame(Command::kHello), "", "extra"},
                                 "version 1 is not supported (this is 2)");
}

// Given version byte 2 on a ROUTER, should hand back the sender's routing id
// so that the caller can answer with ERROR; a good message clears it.
TEST_F(CodecTest, WrongVersionReportsTheSenderToAnswer) {
  zmq::socket_t router(ctx_, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("inproc://wrong-version");
  zmq::socket_t dealer(ctx_, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::routing_id, "old-peer");
  dealer.connect("inproc://wrong-version");
  dealer.send(zmq::buffer(Header(1)), zmq::send_flags::sndmore);
  dealer.send(zmq::buffer(CommandFrame(Command::kHello)), zmq::send_flags::sndmore);
  dealer.send(zmq::buffer(std::string()), zmq::send_flags::none);
  zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(5000)), 1);
  std::optional<std::string> wrong;
  auto rejected = Receive(router, true, {}, &wrong);
  ASSERT_TRUE(rejected.has_value());
  EXPECT_FALSE(rejected->ok());
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(*wrong, "old-peer");

  ASSERT_TRUE(Send(dealer, Make(Command::kHeartbeat, wire::Heartbeat())).ok());
  ASSERT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(5000)), 1);
  auto good = Receive(router, true, {}, &wrong);
  ASSERT_TRUE(good.has_value() && good->ok());
  EXPECT_FALSE(wrong.has_value());
}

// Given version byte 0, should reject it too.
TEST_F(CodecTest, VersionZeroIsRejected) {
  ExpectRejectedThenNextReceived({Header(0), CommandFrame(Command::kHello), ""}, "version 0");
}

// Given a command byte no command has, should reject it.
TEST_F(CodecTest, UnknownCommandIsRejected) {
  ExpectRejectedThenNextReceived({Header(), std::string("\x7e", 1), ""}, "unknown command");
}

// Given a command frame of two bytes, should reject it.
TEST_F(CodecTest, CommandFrameOfWrongSizeIsRejected) {
  ExpectRejectedThenNextReceived({Header(), std::string("\x01\x01", 2), ""}, "unknown command");
  ExpectRejectedThenNextReceived({Header(), std::string(), ""}, "unknown command");
}

// Given a header alone, should reject it as missing its command.
TEST_F(CodecTest, MissingCommandFrameIsRejected) {
  ExpectRejectedThenNextReceived({Header()}, "missing command frame");
}

// Given header and command but no body frame, should reject it.
TEST_F(CodecTest, MissingBodyFrameIsRejected) {
  ExpectRejectedThenNextReceived({Header(), CommandFrame(Command::kHeartbeat)},
                                 "missing body frame");
}

// Given a body one byte over Limits::max_body, should reject it; a body of
// exactly max_body is accepted.
TEST_F(CodecTest, BodyOverMaxBodyIsRejected) {
  const size_t max = Limits().max_body;
  ExpectRejectedThenNextReceived({Header(), CommandFrame(Command::kError), std::string(max + 1, 'x')},
                                 "over the limit");

  SendRaw(a_, {Header(), CommandFrame(Command::kError), std::string(max, 'x')});
  auto at_limit = ReceiveOne();
  ASSERT_TRUE(at_limit.has_value());
  ASSERT_TRUE(at_limit->ok()) << at_limit->status().ToString();
  EXPECT_EQ(at_limit->value().body.size(), max);
}

// Given five payload frames (one over max_payload_frames), should reject
// the message; four are accepted.
TEST_F(CodecTest, TooManyPayloadFramesIsRejected) {
  std::vector<std::string> frames = {Header(), CommandFrame(Command::kResult), ""};
  for (int i = 0; i < 5; ++i) frames.push_back("p" + std::to_string(i));
  ExpectRejectedThenNextReceived(frames, "frame limit");

  frames.pop_back();
  SendRaw(a_, frames);
  auto at_limit = ReceiveOne();
  ASSERT_TRUE(at_limit.has_value());
  ASSERT_TRUE(at_limit->ok()) << at_limit->status().ToString();
  EXPECT_EQ(at_limit->value().payloads.size(), 4u);
}

// Given frames that together exceed Limits::max_message, should reject the
// message even though each frame is small.
TEST_F(CodecTest, MessageOverMaxMessageIsRejected) {
  Limits limits;
  limits.max_message = 1024;
  ExpectRejectedThenNextReceived(
      {Header(), CommandFrame(Command::kResult), "", std::string(600, 'o'), std::string(600, 'e')},
      "size or frame limit", limits);
}

// Given a body that is not a valid protobuf, should give an error naming
// the command, not crash; Receive itself accepts it (it does not parse).
TEST_F(CodecTest, GarbageBodyFailsToParse) {
  const std::vector<std::string> garbage = {
      std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11),  // endless varint
      std::string("\x0f", 1),                     // field 1, wire type 7 (invalid)
      std::string("\x00", 1),                     // field number 0
      std::string("\x0a\x7f" "abc", 5),           // length 127, 3 bytes follow
  };
  for (const std::string& body : garbage) {
    SendRaw(a_, {Header(), CommandFrame(Command::kDispatch), body});
    auto in = ReceiveOne();
    ASSERT_TRUE(in.has_value());
    ASSERT_TRUE(in->ok()) << in->status().ToString();
    auto parsed = Parse<wire::Dispatch>(in->value());
    ASSERT_FALSE(parsed.ok()) << "garbage parsed: " << testing::PrintToString(body);
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(), "malformed DISPATCH body");
  }
}

}  // namespace
}  // namespace drover::protocol
