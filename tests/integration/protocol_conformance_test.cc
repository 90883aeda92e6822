// docs/protocol.md (and the parts of operations.md and spec.md it leans
// on) against the binary: one test per place where issue 14 found them
// apart. Where a test reads a document, it checks the document's words
// against the code's constants, so that neither can change alone.
#include <regex>

#include "backends/kinds.h"
#include "core/spec/job_spec.h"
#include "tests/integration/coordinator_fixture.h"
#include "worker/worker.h"

namespace drover {
namespace {

using testing::Body;
using testing::Command;
using testing::CoordinatorTest;
using testing::FakeClient;
using testing::FakePeer;
using testing::FakeWorker;
using ::testing::HasSubstr;
using testing::IndependentTasks;

std::string Doc(const std::string& name) {
  auto text = testing::ReadFile(std::filesystem::path(DROVER_SOURCE_DIR) / "docs" / name);
  EXPECT_TRUE(text) << name;
  return text.value_or("");
}

// Given the command table of protocol.md, should list exactly the codes
// the codec knows, each with its name (0x0B JOB-DONE, 0x0C
// SERVICE-RELOADED and 0x1D SERVICE-RELOAD included).
TEST(ProtocolDocTest, CommandTableListsEveryCommandOfTheCodec) {
  const std::string doc = Doc("protocol.md");
  std::map<int, std::string> documented;
  const std::regex row(R"(\| `0x([0-9A-F]{2})` \| ([A-Z-]+) +\|)");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), row);
       it != std::sregex_iterator(); ++it) {
    documented[std::stoi((*it)[1].str(), nullptr, 16)] = (*it)[2].str();
  }
  std::map<int, std::string> known;
  for (int c = 0; c < 256; ++c) {
    const auto name = protocol::CommandName(static_cast<Command>(c));
    if (name != "UNKNOWN") known[c] = std::string(name);
  }
  // STATUS and WORKERS are the names of the requests in both.
  EXPECT_EQ(documented, known);
}

// Given the TaskStatus, JobStatus and WorkerInfo bodies, should find every
// field of drover.proto documented with its number and name.
TEST(ProtocolDocTest, StatusAndWorkerFieldsAreDocumented) {
  // Field lists are prose wrapped at any space.
  const std::string doc = std::regex_replace(Doc("protocol.md"), std::regex("\\s+"), " ");
  for (const google::protobuf::Descriptor* d :
       {wire::TaskStatus::descriptor(), wire::JobStatus::descriptor(),
        wire::WorkerInfo::descriptor(), wire::AttemptSummary::descriptor()}) {
    for (int i = 0; i < d->field_count(); ++i) {
      const auto* f = d->field(i);
      const std::string ref =
          std::to_string(f->number()) + " `" + std::string(f->name()) + "`";
      EXPECT_NE(doc.find(ref), std::string::npos) << d->name() << ": " << ref;
    }
  }
}

// Given the reconnect backoff, should find the worker's cap in both
// protocol.md and operations.md.
TEST(ProtocolDocTest, ReconnectBackoffCapAgrees) {
  const auto cap =
      std::chrono::duration_cast<std::chrono::seconds>(WorkerOptions{}.reconnect_max)
          .count();
  EXPECT_THAT(Doc("protocol.md"), HasSubstr("up to " + std::to_string(cap) + " s"));
  EXPECT_THAT(Doc("operations.md"),
              HasSubstr("doubling to " + std::to_string(cap) + " s"));
}

// Given spec.md's list of the keys `defaults` may hold, should load a
// default of each, and refuse `on` and `slots` there as the document says.
TEST(ProtocolDocTest, SpecDefaultsKeysAgree) {
  const std::string doc = Doc("spec.md");
  const auto at = doc.find("`defaults` holds these task settings:");
  ASSERT_NE(at, std::string::npos);
  const std::string para = doc.substr(at, doc.find("Every other task key", at) - at);
  std::set<std::string> keys;
  const std::regex key("`([a-z_]+)`");
  for (auto it = std::sregex_iterator(para.begin(), para.end(), key);
       it != std::sregex_iterator(); ++it) {
    if ((*it)[1].str() != "defaults") keys.insert((*it)[1].str());
  }
  EXPECT_EQ(keys,
            (std::set<std::string>{"backend", "cache", "cwd", "env", "fn", "kill_grace",
                                   "limits", "output_limit", "pool", "retries",
                                   "retry_backoff", "service", "timeout"}));
  const std::string tail = "tasks:\n  t: {run: echo}\n";
  spec::TaskKinds kinds;
  AddBuiltinTaskKinds(&kinds);
  spec::LoadOptions options;
  options.kinds = &kinds;
  const std::map<std::string, std::string> values = {
      {"backend", "spawn"}, {"cwd", "/tmp"},
      {"env", "{A: b}"},    {"fn", "sort"},
      {"kill_grace", "1s"}, {"output_limit", "1MiB"},
      {"retries", "2"},     {"retry_backoff", "1s"},
      {"timeout", "5s"},    {"limits", "{files: 64}"},
      {"cache", "true"}};
  for (const auto& [k, v] : values) {
    auto loaded =
        spec::LoadString("version: 1\nname: d\ndefaults: {" + k + ": " + v + "}\n" + tail,
                         "d.yaml", options);
    EXPECT_TRUE(loaded.ok()) << k << ": "
                             << (loaded.errors.empty() ? ""
                                                       : loaded.errors[0].ToString());
  }
  for (const std::string refused : {"on: {a: b}", "slots: 2", "run: echo"}) {
    auto loaded = spec::LoadString(
        "version: 1\nname: d\ndefaults: {" + refused + "}\n" + tail, "d.yaml", options);
    EXPECT_FALSE(loaded.ok()) << refused;
  }
}

// Given a job watched by one client plainly and by one with output, should
// send `running` (with the worker) to the one with output only, never
// `waiting` or `ready`, and the final state to both, as TASK-EVENT says.
TEST_F(CoordinatorTest, TaskEventRunningGoesToOutputWatchers) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeClient& plain = AddClient();
  auto submitted = plain.Submit(IndependentTasks("events", 1));
  ASSERT_TRUE(submitted);
  FakeClient& follower = AddClient();
  follower.Watch(submitted->job_id(), /*output=*/true);
  Sync();
  FakeWorker& worker = AddWorker("w1", 1);
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  auto running = follower.WaitTaskEvent("t1", "running");
  ASSERT_TRUE(running);
  EXPECT_EQ(running->worker(), "w1");
  EXPECT_EQ(running->attempt(), 1u);
  EXPECT_EQ(running->counts().running(), 1u);
  Sync();
  ExpectNothingQueued(plain, "a plain watcher");
  worker.SendResult(d->attempt_id(), testing::Ok());
  ASSERT_TRUE(plain.WaitJobEvent());
  ASSERT_TRUE(follower.WaitJobEvent());
  for (const auto* c : {&plain, &follower}) {
    for (const auto& ev : c->events()) {
      EXPECT_NE(ev.state(), "waiting");
      EXPECT_NE(ev.state(), "ready");
    }
  }
  EXPECT_EQ(plain.events().size(), 1u);  // succeeded
}

// Given an unregistered peer, should answer a well-formed worker command
// with DISCONNECT, drop a command the coordinator never receives and a
// worker command whose body does not parse (or a RESULT without its 2
// payload frames) without a reply, and answer a client request or HELLO
// whose body does not parse with ERROR (docs/protocol.md, "Malformed
// messages": the body, check 6, comes before the registration, check 7).
TEST_F(CoordinatorTest, RejectedMessagesGetTheDocumentedReplies) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakePeer peer(context_, endpoint_);
  for (Command c : {Command::kWelcome, Command::kAck, Command::kDispatch,
                    Command::kSubmitted, Command::kJobDone, Command::kOk}) {
    peer.Send(c, wire::Ok());
  }
  protocol::Message bad;
  bad.body = "\xff\xff\xff";
  for (Command c : {Command::kHeartbeat, Command::kResult, Command::kOutput,
                    Command::kDraining, Command::kServiceReloaded}) {
    bad.command = c;
    peer.SendMessage(bad);
  }
  peer.Send(Command::kResult, wire::Result());  // no payload frames
  Sync();
  ExpectNothingQueued(peer, "a peer that sent malformed or misdirected messages");
  for (Command c : {Command::kHeartbeat, Command::kResult, Command::kOutput,
                    Command::kDraining, Command::kServiceReloaded}) {
    std::vector<std::string> payloads;
    if (c == Command::kResult) payloads = {"", ""};
    if (c == Command::kOutput) payloads = {""};
    peer.Send(c, wire::Heartbeat(), payloads);
    EXPECT_TRUE(peer.Expect(Command::kDisconnect)) << testing::Name(c);
  }
  for (Command c : {Command::kSubmit, Command::kHello}) {
    bad.command = c;
    peer.SendMessage(bad);
    auto e = peer.Expect(Command::kError);
    ASSERT_TRUE(e) << testing::Name(c);
    EXPECT_THAT(Body<wire::Error>(*e).message(), HasSubstr("malformed"));
  }
}

// Given a registered worker that sends HELLO again on its connection,
// should answer WELCOME and keep its attempt (the grammar's `W:HELLO
// C:WELCOME` in traffic).
TEST_F(CoordinatorTest, HelloWhileRegisteredIsWelcomedAndKeepsAttempts) {
  EXPECT_THAT(Doc("protocol.md"), HasSubstr("/ W:HELLO C:WELCOME"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  ASSERT_TRUE(client.Submit(IndependentTasks("again", 1)));
  auto d = worker.ExpectDispatch();
  ASSERT_TRUE(d);
  ASSERT_TRUE(worker.RegisterWith("session-1", {{"spawn", 1}}, {}, {d->attempt_id()}));
  EXPECT_EQ(worker.welcome().unknown_size(), 0);
  worker.SendResult(d->attempt_id(), testing::Ok());
  ASSERT_TRUE(worker.ExpectAck());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");
}

// Given a registered worker that sends only HEARTBEATs whose body does not
// parse, should declare it lost when its liveness runs out, as if it were
// silent: a malformed message is no sign of life (docs/protocol.md,
// "Malformed messages"); a well-formed HEARTBEAT keeps another alive.
TEST_F(CoordinatorTest, MalformedMessagesAreNoSignOfLife) {
  EXPECT_THAT(Doc("protocol.md"), HasSubstr("does not count as a sign of life"));
  options_.liveness = 5;  // 5 s of silence at a 1 s heartbeat
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& babbler = AddWorker("babbler", 1, "session-a");
  FakeWorker& steady = AddWorker("steady", 1, "session-b");
  protocol::Message bad;
  bad.command = Command::kHeartbeat;
  bad.body = "\xff\xff\xff";
  for (int second = 1; second <= 6; ++second) {
    clock_.Advance(std::chrono::seconds(1));
    babbler.SendMessage(bad);
    steady.SendHeartbeat();
    Sync();
  }
  EXPECT_EQ(Stat(&CoordinatorStats::workers_lost), 1u);
  auto workers = AddClient().Workers();
  ASSERT_TRUE(workers);
  for (const auto& w : workers->workers()) {
    EXPECT_EQ(w.state(), w.name() == "steady" ? "ready" : "lost") << w.name();
  }
}

// Given an attempt placed on a worker, a HELLO of the same process (same
// session) that does not list it should keep it when it comes on the same
// connection (a DISPATCH may still be on its way) and, on a new
// connection, place it again without spending a retry: the old connection
// took the DISPATCH with it (docs/protocol.md, "Registration").
TEST_F(CoordinatorTest, HelloOnANewConnectionPlacesUndeliveredAttemptsAgain) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& old_connection = AddWorker("w1", 1, "session-1");
  FakeClient& client = AddClient();
  ASSERT_TRUE(client.Submit("version: 1\nname: moved\ntasks:\n  only: {run: echo hi}\n"));
  auto first = old_connection.ExpectDispatch();
  ASSERT_TRUE(first);

  ASSERT_TRUE(old_connection.Register("session-1", 1));  // same connection, nothing held
  Sync();
  ExpectNothingQueued(old_connection, "w1 after a HELLO on its own connection");

  FakeWorker new_connection(context_, endpoint_, "w1");
  ASSERT_TRUE(new_connection.Register("session-1", 1));
  auto again = new_connection.ExpectDispatch();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->task(), "only");
  EXPECT_NE(again->attempt_id(), first->attempt_id());
  new_connection.SendResult(again->attempt_id(), testing::Ok());
  ASSERT_TRUE(new_connection.ExpectAck());
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "succeeded");  // no retries, and none was spent
}

// Given a registered worker and a client watching a running job, a clean
// stop of the coordinator should send each a DISCONNECT (docs/protocol.md,
// "Closing"), so that neither waits out its liveness.
TEST_F(CoordinatorTest, CleanStopSaysDisconnectToWorkersAndWatchers) {
  EXPECT_THAT(Doc("protocol.md"),
              HasSubstr("sends DISCONNECT to every registered worker"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 1);
  FakeClient& client = AddClient();
  ASSERT_TRUE(client.Submit(IndependentTasks("stopping", 1)));
  ASSERT_TRUE(worker.ExpectDispatch());
  StopCoordinator();
  for (FakePeer* peer :
       {static_cast<FakePeer*>(&worker), static_cast<FakePeer*>(&client)}) {
    std::optional<protocol::Message> bye;
    // Bounded: TASK-EVENTs may come first.
    for (int i = 0; i < 10 && !bye; ++i) {
      auto m = peer->Next(testing::kDeadline);
      if (!m) break;
      if (m->command == Command::kDisconnect) bye = std::move(m);
    }
    ASSERT_TRUE(bye);
    EXPECT_EQ(Body<wire::Disconnect>(*bye).reason(), "the coordinator is stopping");
  }
}

// Given a HELLO with no name (and no slots), should refuse it with ERROR
// and register nothing, as HELLO's `name` says.
TEST_F(CoordinatorTest, HelloWithoutNameIsRefused) {
  EXPECT_THAT(Doc("protocol.md"), HasSubstr("A HELLO with an empty `name` is refused"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakePeer peer(context_, endpoint_);
  peer.Send(Command::kHello, wire::Hello());
  auto e = peer.Expect(Command::kError);
  ASSERT_TRUE(e);
  EXPECT_THAT(Body<wire::Error>(*e).message(), HasSubstr("without a name"));
  auto workers = AddClient().Workers();
  ASSERT_TRUE(workers);
  EXPECT_EQ(workers->workers_size(), 0);
}

// Given HELLOs over their documented limits (a name with a newline, 65
// labels), should refuse each with ERROR saying what is wrong and register
// nothing (docs/protocol.md, HELLO, "Limits of a HELLO").
TEST_F(CoordinatorTest, HelloOverItsLimitsIsRefused) {
  EXPECT_THAT(Doc("protocol.md"), HasSubstr("more than 64 entries in `slots`"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakePeer peer(context_, endpoint_);
  wire::Hello forged;
  forged.set_name("w1\n2026-12-07 info coordinator: worker root registered");
  wire::Hello crowded;
  crowded.set_name("w2");
  for (int i = 0; i < 65; ++i) (*crowded.mutable_labels())["k" + std::to_string(i)] = "v";
  for (const auto& [hello, why] :
       {std::pair{forged, "name has a control character"},
        std::pair{crowded, "labels has 65 entries, more than 64"}}) {
    peer.Send(Command::kHello, hello);
    auto e = peer.Expect(Command::kError);
    ASSERT_TRUE(e) << why;
    EXPECT_EQ(Body<wire::Error>(*e).message(), std::string("HELLO refused: ") + why);
  }
  auto workers = AddClient().Workers();
  ASSERT_TRUE(workers);
  EXPECT_EQ(workers->workers_size(), 0);
}

// Given 200 departed workers with 64 labels of 256 bytes each (over 4 MiB
// of WorkerInfo in all), should answer WORKERS with those that fit in
// 3 MiB and count the rest in `omitted`, so that the reply stays under the
// 4 MiB body limit a client reads.
TEST_F(CoordinatorTest, WorkersReplyStaysUnderTheBodyLimit) {
  EXPECT_THAT(Doc("protocol.md"), HasSubstr("`omitted`"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  constexpr int kWorkers = 200;
  for (int i = 0; i < kWorkers; ++i) {
    wire::Hello hello;
    hello.set_name("w" + std::to_string(i));
    hello.set_session("s");
    for (int l = 0; l < 64; ++l) {
      (*hello.mutable_labels())[std::string(120, 'k') + std::to_string(l)] =
          std::string(256, 'v');
    }
    FakeWorker& w = AddWorkerWithHello(hello);
    w.SendDisconnect(/*drained=*/true);
  }
  Sync();
  auto workers = AddClient().Workers();
  ASSERT_TRUE(workers);
  EXPECT_GT(workers->omitted(), 0u);
  EXPECT_EQ(workers->workers_size() + static_cast<int>(workers->omitted()), kWorkers);
  EXPECT_LE(workers->ByteSizeLong(), size_t{3} << 20);
}

// Given a worker that reports an attempt ok with outputs over the caps
// (1,001 keys) or with a name outside A-Z a-z 0-9 _ -, should record it as
// bad-outputs with none of them, as drover's own worker would have: the
// caps of RESULT field 14 hold whatever the peer (docs/protocol.md).
TEST_F(CoordinatorTest, OutputsOverTheCapsFromAWorkerAreBadOutputs) {
  EXPECT_THAT(Doc("protocol.md"), HasSubstr("At most 1,000 keys and 1,048,576 bytes"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& worker = AddWorker("w1", 2);
  FakeClient& client = AddClient();
  auto submitted = client.Submit(IndependentTasks("caps", 2));
  ASSERT_TRUE(submitted);
  auto first = worker.ExpectDispatch();
  auto second = worker.ExpectDispatch();
  ASSERT_TRUE(first && second);
  AttemptOutcome crowded = testing::Ok();
  for (int k = 0; k <= 1000; ++k) crowded.outputs["k" + std::to_string(k)] = "v";
  worker.SendResult(first->attempt_id(), crowded);
  AttemptOutcome misnamed = testing::Ok();
  misnamed.outputs["bad\nname"] = "v";
  worker.SendResult(second->attempt_id(), misnamed);
  auto done = client.WaitJobEvent();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), "failed");
  auto tasks = Reader().Tasks(submitted->job_id());
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), 2u);
  for (const auto& t : *tasks) {
    EXPECT_EQ(t.reason, "bad-outputs") << t.name;
    EXPECT_THAT(t.detail, HasSubstr("refused by the coordinator")) << t.name;
  }
  EXPECT_EQ(Stat(&CoordinatorStats::malformed), 0u);
  // A client request whose body does not parse is answered, and counted.
  FakePeer peer(context_, endpoint_);
  protocol::Message bad;
  bad.command = Command::kStatusRequest;
  bad.body = "\xff\xff";
  peer.SendMessage(bad);
  ASSERT_TRUE(peer.Expect(Command::kError));
  EXPECT_EQ(Stat(&CoordinatorStats::malformed), 1u);
}

// Given 300 workers that registered and left, should list the 256 most
// recent in WORKERS, as the document says.
TEST_F(CoordinatorTest, WorkersListsAtMost256Departed) {
  EXPECT_THAT(Doc("protocol.md"), HasSubstr("at most 256 of them"));
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  for (int i = 0; i < 300; ++i) {
    FakeWorker w(context_, endpoint_, "w" + std::to_string(i));
    ASSERT_TRUE(w.Register("s", 1));
    w.SendDisconnect(/*drained=*/true);
    Sync();
  }
  auto workers = AddClient().Workers();
  ASSERT_TRUE(workers);
  EXPECT_EQ(workers->workers_size(), 256);
  EXPECT_EQ(workers->workers(0).name(), "w299");
}

}  // namespace
}  // namespace drover
