// Scripted peers of the coordinator for protocol tests: a fake worker and a
// fake client, each a DEALER socket on the test thread, speaking the drover
// protocol (docs/protocol.md) through the real codec.
//
// Every wait is bounded by a real-time deadline (kDeadline) and polls the
// socket with the time left; a wait that expires records a test failure
// naming what was awaited. The coordinator's HEARTBEATs are counted and
// skipped by every wait, since their timing depends on the FakeClock and is
// not what these waits are about.
//
// Not thread-safe: one test thread owns each peer (ZeroMQ sockets are
// single-threaded).
#ifndef DROVER_TESTS_INTEGRATION_FAKE_PEER_H_
#define DROVER_TESTS_INTEGRATION_FAKE_PEER_H_

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "core/base/outcome.h"
#include "core/protocol/codec.h"
#include "core/protocol/convert.h"
#include "core/protocol/drover.pb.h"

namespace drover::testing {

using Millis = std::chrono::milliseconds;
using protocol::Command;
using protocol::Message;

// Generous: on a loaded 2-core machine a loop turn with a commit can take
// tens of milliseconds; a healthy test never comes near this.
inline constexpr Millis kDeadline{5000};

inline std::string Name(Command c) { return std::string(protocol::CommandName(c)); }

// Parses the body of `m` as `Proto`; records a failure when it does not parse.
template <typename Proto>
Proto Body(const Message& m) {
  auto parsed = protocol::Parse<Proto>(m);
  if (!parsed.ok()) {
    ADD_FAILURE() << "cannot parse the " << Name(m.command)
                  << " body: " << parsed.status().ToString();
    return Proto();
  }
  return std::move(parsed.value());
}

class FakePeer {
 public:
  FakePeer(zmq::context_t& context, const std::string& endpoint)
      : socket_(context, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }
  FakePeer(const FakePeer&) = delete;
  FakePeer& operator=(const FakePeer&) = delete;

  void Send(Command command, const google::protobuf::Message& body,
            std::vector<std::string> payloads = {}) {
    Message m = protocol::Make(command, body);
    m.payloads = std::move(payloads);
    SendMessage(m);
  }
  void SendMessage(const Message& m) {
    const Status s = protocol::Send(socket_, m);
    EXPECT_TRUE(s.ok()) << "sending " << Name(m.command) << ": " << s.ToString();
  }
  // Sends `frames` as one multipart message, bypassing the codec (for
  // malformed messages).
  void SendRawFrames(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      const bool last = i + 1 == frames.size();
      const auto sent = socket_.send(zmq::buffer(frames[i]),
                                     last ? zmq::send_flags::none : zmq::send_flags::sndmore);
      EXPECT_TRUE(sent.has_value()) << "raw frame " << i << " not sent";
    }
  }

  // The next message that is not a HEARTBEAT, waiting at most `timeout`;
  // nullopt when none came (no failure is recorded here).
  std::optional<Message> Next(Millis timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto m = TakeQueued()) return m;
      const auto left = std::chrono::duration_cast<Millis>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, left);
    }
  }

  // The next message (HEARTBEATs aside) must be `command`. Records a failure
  // and returns nullopt when another command comes first or none comes
  // before the deadline.
  std::optional<Message> Expect(Command command, Millis timeout = kDeadline) {
    auto m = Next(timeout);
    if (!m) {
      ADD_FAILURE() << "no " << Name(command) << " within " << timeout.count() << " ms";
      return std::nullopt;
    }
    if (m->command != command) {
      ADD_FAILURE() << "expected " << Name(command) << ", got " << Name(m->command);
      return std::nullopt;
    }
    return m;
  }

  // Every message (HEARTBEATs aside) already queued on the socket, without
  // waiting. Callers make sure everything that could have been sent was
  // sent (a synchronising round trip) before they read an empty answer as
  // "nothing was sent".
  std::vector<Message> Queued() {
    std::vector<Message> out;
    // Bounded: the socket only holds what the coordinator sent so far.
    for (int i = 0; i < 100000; ++i) {
      auto m = TakeQueued();
      if (!m) break;
      out.push_back(std::move(*m));
    }
    return out;
  }

  int heartbeats() const { return heartbeats_; }
  zmq::socket_t& socket() { return socket_; }

 private:
  // One queued non-HEARTBEAT message, if any. A message the codec refuses
  // is a coordinator bug: recorded as a failure and skipped.
  std::optional<Message> TakeQueued() {
    for (;;) {
      auto received = protocol::Receive(socket_, /*router=*/false);
      if (!received) return std::nullopt;
      if (!received->ok()) {
        ADD_FAILURE() << "the coordinator sent a malformed message: "
                      << received->status().ToString();
        continue;
      }
      if (received->value().command == Command::kHeartbeat) {
        ++heartbeats_;
        continue;
      }
      return std::move(received->value());
    }
  }

  zmq::socket_t socket_;
  int heartbeats_ = 0;
};

// The worker side of the dialog, as worker/worker.cc speaks it.
class FakeWorker : public FakePeer {
 public:
  FakeWorker(zmq::context_t& context, const std::string& endpoint, std::string name)
      : FakePeer(context, endpoint), name_(std::move(name)) {}

  const std::string& name() const { return name_; }

  // Sends HELLO with `spawn_slots` slots of the spawn backend and waits for
  // WELCOME. False (with a failure recorded) when none comes.
  bool Register(const std::string& session, uint32_t spawn_slots) {
    return RegisterWith(session, {{"spawn", spawn_slots}});
  }
  // HELLO with these slots, labels and held attempts; waits for WELCOME.
  bool RegisterWith(const std::string& session, const std::map<std::string, uint32_t>& slots,
                    const std::map<std::string, std::string>& labels = {},
                    const std::vector<uint64_t>& running = {}) {
    wire::Hello hello;
    hello.set_name(name_);
    hello.set_hostname("fake-host");
    hello.set_pid(4242);
    hello.set_session(session);
    hello.set_version("test");
    for (const auto& [b, n] : slots) (*hello.mutable_slots())[b] = n;
    for (const auto& [k, v] : labels) (*hello.mutable_labels())[k] = v;
    for (uint64_t id : running) hello.add_running(id);
    hello.set_heartbeat_ms(1000);
    Send(Command::kHello, hello);
    auto welcome = Expect(Command::kWelcome);
    if (welcome) welcome_ = Body<wire::Welcome>(*welcome);
    return welcome.has_value();
  }
  const wire::Welcome& welcome() const { return welcome_; }

  // Waits for a DISPATCH and returns its body (empty on failure).
  std::optional<wire::Dispatch> ExpectDispatch(Millis timeout = kDeadline) {
    auto m = Expect(Command::kDispatch, timeout);
    if (!m) return std::nullopt;
    return Body<wire::Dispatch>(*m);
  }
  // Waits for an ACK and returns the attempt ids it acknowledges.
  std::optional<std::vector<uint64_t>> ExpectAck(Millis timeout = kDeadline) {
    auto m = Expect(Command::kAck, timeout);
    if (!m) return std::nullopt;
    const auto ack = Body<wire::Ack>(*m);
    return std::vector<uint64_t>(ack.attempt_ids().begin(), ack.attempt_ids().end());
  }
  std::optional<std::vector<uint64_t>> ExpectCancel(Millis timeout = kDeadline) {
    auto m = Expect(Command::kCancel, timeout);
    if (!m) return std::nullopt;
    const auto cancel = Body<wire::Cancel>(*m);
    return std::vector<uint64_t>(cancel.attempt_ids().begin(),
                                 cancel.attempt_ids().end());
  }

  // Sends RESULT for attempt `id`: the body from `outcome` (stream sizes
  // taken from the payloads) and exactly two payload frames.
  void SendResult(uint64_t id, AttemptOutcome outcome, std::string out = "",
                  std::string err = "") {
    outcome.out.bytes = out.size();
    outcome.err.bytes = err.size();
    Send(Command::kResult, protocol::OutcomeToWire(id, name_, outcome),
         {std::move(out), std::move(err)});
  }
  void SendHeartbeat() {
    Message hb;
    hb.command = Command::kHeartbeat;
    SendMessage(hb);
  }
  void SendDraining(uint64_t deadline_ms = 30000) {
    wire::Draining d;
    d.set_deadline_ms(deadline_ms);
    Send(Command::kDraining, d);
  }
  void SendDisconnect(bool drained, const std::string& reason = "shutdown") {
    wire::Disconnect d;
    d.set_drained(drained);
    d.set_reason(reason);
    Send(Command::kDisconnect, d);
  }
  // OUTPUT: a chunk of attempt `id`'s stdout (stream 1) or stderr (2).
  void SendOutput(uint64_t id, uint32_t stream, uint64_t offset, std::string bytes) {
    wire::Output o;
    o.set_attempt_id(id);
    o.set_stream(stream);
    o.set_offset(offset);
    Send(Command::kOutput, o, {std::move(bytes)});
  }

 private:
  std::string name_;
  wire::Welcome welcome_;
};

// The client side: `drover submit --wait` / `drover run`.
class FakeClient : public FakePeer {
 public:
  using FakePeer::FakePeer;

  // Submit/Watch.max_batch of this client's SUBMIT and WATCH: the
  // TASK-EVENTs one message may carry (0: one each).
  uint32_t max_batch = 0;

  // Sends SUBMIT (watching) and waits for SUBMITTED.
  std::optional<wire::Submitted> Submit(const std::string& yaml, bool resume = false,
                                        const std::string& file = "job.yaml") {
    wire::Submit submit;
    submit.set_spec_file(file);
    submit.set_spec_text(yaml);
    submit.set_resume(resume);
    submit.set_watch(true);
    submit.set_max_batch(max_batch);
    submit.set_cwd("/");
    Send(Command::kSubmit, submit);
    auto m = Expect(Command::kSubmitted);
    if (!m) return std::nullopt;
    return Body<wire::Submitted>(*m);
  }

  void CancelJob(const std::string& job_id, const std::string& task = "") {
    wire::CancelJob cancel;
    cancel.set_job_id(job_id);
    cancel.set_task(task);
    Send(Command::kCancelJob, cancel);
  }

  // Sends `request` and waits for `reply` (its body parsed as Reply).
  // Records a failure and returns nullopt on any other answer (an ERROR's
  // text goes into the failure message) or none.
  template <typename Reply>
  std::optional<Reply> Ask(Command command, const google::protobuf::Message& request,
                           Command reply, Message* raw = nullptr) {
    Send(command, request);
    auto m = Next(kDeadline);
    if (!m) {
      ADD_FAILURE() << "no answer to " << Name(command);
      return std::nullopt;
    }
    if (m->command != reply) {
      ADD_FAILURE() << "expected " << Name(reply) << " for " << Name(command) << ", got "
                    << Name(m->command)
                    << (m->command == Command::kError
                            ? ": " + Body<wire::Error>(*m).message()
                            : std::string());
      return std::nullopt;
    }
    if (raw) *raw = *m;
    return Body<Reply>(*m);
  }
  // Sends `request` and expects an ERROR; returns its message ("" on failure).
  std::string AskError(Command command, const google::protobuf::Message& request) {
    Send(command, request);
    auto m = Expect(Command::kError);
    return m ? Body<wire::Error>(*m).message() : std::string();
  }

  std::optional<wire::StatusReply> Status(const std::string& job_id, bool tasks = true,
                                          uint32_t limit = 0) {
    wire::StatusRequest req;
    req.set_job_id(job_id);
    req.set_tasks(tasks);
    req.set_limit(limit);
    return Ask<wire::StatusReply>(Command::kStatusRequest, req, Command::kStatusReply);
  }
  std::optional<wire::WorkersReply> Workers() {
    return Ask<wire::WorkersReply>(Command::kWorkersRequest, wire::WorkersRequest(),
                                   Command::kWorkersReply);
  }
  void Watch(const std::string& job_id, bool output = false) {
    wire::Watch w;
    w.set_job_id(job_id);
    w.set_output(output);
    w.set_max_batch(max_batch);
    Send(Command::kWatch, w);
  }
  std::optional<wire::Submitted> Retry(const std::string& job_id, bool watch = true) {
    wire::RetryJob r;
    r.set_job_id(job_id);
    r.set_watch(watch);
    r.set_max_batch(max_batch);
    return Ask<wire::Submitted>(Command::kRetryJob, r, Command::kSubmitted);
  }
  // LOGS-REQUEST; the LOGS message (body and its two payload frames).
  std::optional<Message> Logs(const std::string& job_id, const std::string& task,
                              uint32_t attempt = 0, bool follow = false) {
    wire::LogsRequest r;
    r.set_job_id(job_id);
    r.set_task(task);
    r.set_attempt(attempt);
    r.set_follow(follow);
    Message raw;
    if (!Ask<wire::Logs>(Command::kLogsRequest, r, Command::kLogs, &raw)) return std::nullopt;
    return raw;
  }

  // Reads events until a TASK-EVENT for `task` in `state`. Events read on
  // the way are kept in events(). Records a failure on a JOB-EVENT, any
  // other command, or the deadline.
  std::optional<wire::TaskEvent> WaitTaskEvent(const std::string& task,
                                               const std::string& state) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    for (;;) {
      const auto left = std::chrono::duration_cast<Millis>(
          deadline - std::chrono::steady_clock::now());
      auto m = Next(std::max(left, Millis(0)));
      if (!m) {
        ADD_FAILURE() << "no TASK-EVENT " << task << " " << state << " in time";
        return std::nullopt;
      }
      if (m->command != Command::kTaskEvent) {
        ADD_FAILURE() << "waiting for TASK-EVENT " << task << " " << state << ", got "
                      << Name(m->command);
        return std::nullopt;
      }
      auto ev = Body<wire::TaskEvent>(*m);
      events_.push_back(ev);
      if (ev.task() == task && ev.state() == state) return ev;
    }
  }

  // Reads events until the JOB-EVENT; TASK-EVENTs on the way go to events().
  std::optional<wire::JobEvent> WaitJobEvent() {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    for (;;) {
      const auto left = std::chrono::duration_cast<Millis>(
          deadline - std::chrono::steady_clock::now());
      auto m = Next(std::max(left, Millis(0)));
      if (!m) {
        ADD_FAILURE() << "no JOB-EVENT in time";
        return std::nullopt;
      }
      if (m->command == Command::kJobEvent) return Body<wire::JobEvent>(*m);
      if (m->command != Command::kTaskEvent) {
        ADD_FAILURE() << "waiting for JOB-EVENT, got " << Name(m->command);
        return std::nullopt;
      }
      events_.push_back(Body<wire::TaskEvent>(*m));
    }
  }

  const std::vector<wire::TaskEvent>& events() const { return events_; }

 private:
  std::vector<wire::TaskEvent> events_;
};

}  // namespace drover::testing

#endif  // DROVER_TESTS_INTEGRATION_FAKE_PEER_H_
