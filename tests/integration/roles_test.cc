// Roles of authorized keys through the real binary (docs/security.md, "Keys
// and roles"): a `drover coordinator` with CURVE on 127.0.0.1 port 0 whose
// authorized_keys gives one key each role, and `drover worker` and client
// commands using those keys. A command outside its key's role is refused
// with an ERROR and one log line, and nothing of it reaches the store; the
// store is read directly (read-only) to show that.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.h>

#include <zmq.hpp>

#include "core/protocol/codec.h"
#include "core/protocol/security.h"
#include "tests/integration/distributed_test_util.h"

namespace drover {
namespace {

using json = nlohmann::json;
using testing::DistributedTest;
using testing::Millis;
using testing::ProcessResult;
using testing::ReadFile;
using testing::StoreCount;
using testing::WriteFile;

constexpr Millis kEventDeadline{30'000};

size_t Occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

class RolesTest : public DistributedTest {
 protected:
  // Makes a key pair per role and starts a coordinator whose authorized_keys
  // lists them as `KEY role=ROLE NAME`.
  void StartKeyedCoordinator() {
    std::string authorized = "# one key per role\n";
    for (const char* name : {"coord", "worker", "submitter", "reader", "ops"}) {
      const ProcessResult k = Drover({"keygen", name});
      ASSERT_EQ(k.exit_code, 0) << k.Describe();
    }
    const std::pair<const char*, const char*> roles[] = {
        {"worker", "worker"}, {"submitter", "submit"}, {"reader", "read"}, {"ops", "admin"}};
    for (const auto& [name, role] : roles) {
      authorized += Key(name) + " role=" + role + " " + name + "\n";
    }
    WriteFile(work_ / "authorized_keys", authorized);
    ASSERT_TRUE(StartCoordinator({"--curve-secret", "coord.key", "--authorized-keys",
                                  "authorized_keys"}));
  }

  std::string Key(const std::string& name) {
    return ReadFile(work_ / (name + ".pub")).value_or("").substr(0, 40);
  }
  static std::vector<std::string> KeyFlags(const std::string& name) {
    return {"--curve-secret", name + ".key", "--curve-server-key", "coord.pub"};
  }
  // `drover ARGS...` as the client holding key `name`.
  ProcessResult As(const std::string& name, std::vector<std::string> args) {
    for (auto& f : KeyFlags(name)) args.push_back(f);
    return Drover(args);
  }
  // The job id `drover submit` printed, or "".
  std::string SubmitAs(const std::string& name, const std::string& spec) {
    const ProcessResult r = As(name, {"submit", spec});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    const size_t at = r.out.find_first_of("0123456789");
    return r.exit_code == 0 && at != std::string::npos ? r.out.substr(at, 20) : "";
  }
  json StatusAs(const std::string& name, const std::string& job) {
    const ProcessResult r = As(name, {"status", job, "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    json doc = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    return doc.is_discarded() ? json() : doc;
  }
  bool WorkerListed(const std::string& worker_name) {
    const ProcessResult r = As("ops", {"workers", "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    return r.out.find("\"" + worker_name + "\"") != std::string::npos;
  }
  // Polls WORKERS (as the admin, bounded) until `worker_name` is listed.
  bool WaitForWorker(const std::string& worker_name) {
    return testing::PollUntil([&] { return WorkerListed(worker_name); }, kEventDeadline,
                              testing::kClientPollInterval);
  }
  int64_t Jobs() { return StoreCount(state_, "SELECT count(*) FROM jobs"); }
};

// Given a worker's key, `drover submit` with it should be refused with an
// ERROR naming the command and the role, logged once by the coordinator,
// and no job should reach the store.
TEST_F(RolesTest, WorkerKeyCannotSubmit) {
  ASSERT_NO_FATAL_FAILURE(StartKeyedCoordinator());
  Spec("job.yaml", "version: 1\ntasks:\n  t: {run: touch ran}\n");
  const ProcessResult r = As("worker", {"submit", "job.yaml", "--timeout", "10s"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("SUBMIT refused: this connection's key " + Key("worker") +
                       " (worker) has role worker"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(coordinator()->WaitForStderr(
      "refused SUBMIT from key " + Key("worker") + " (worker): its role worker may send",
      kEventDeadline))
      << coordinator()->ErrTail();
  EXPECT_EQ(Jobs(), 0);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM tasks"), 0);
}

// Given a running job submitted with a submit key, `drover cancel` with a
// read key (and with the submit key) should be refused, and the job should
// stay running in the store with no task cancelled; the read key may read
// its status, which names the submitter.
TEST_F(RolesTest, ReadKeyCannotCancel) {
  ASSERT_NO_FATAL_FAILURE(StartKeyedCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=1", KeyFlags("worker")));
  ASSERT_TRUE(WaitForWorker("w1"));
  Spec("job.yaml", "version: 1\ntasks:\n  t: {run: sleep 30}\n");
  const std::string job = SubmitAs("submitter", "job.yaml");
  ASSERT_FALSE(job.empty());

  for (const char* name : {"reader", "submitter"}) {
    const ProcessResult r = As(name, {"cancel", job, "--timeout", "10s"});
    EXPECT_EQ(r.exit_code, 1) << name << ": " << r.Describe();
    EXPECT_NE(r.err.find("CANCEL-JOB refused"), std::string::npos) << name << ": " << r.err;
    EXPECT_TRUE(coordinator()->WaitForStderr("refused CANCEL-JOB from key " + Key(name),
                                             kEventDeadline))
        << coordinator()->ErrTail();
  }
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM jobs WHERE state = 'running'"), 1);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM tasks WHERE state = 'cancelled' OR "
                               "reason = 'cancelled'"),
            0);

  const json status = StatusAs("reader", job);
  const json j = testing::JobOfStatus(status);
  EXPECT_EQ(j.value("state", ""), "running") << status.dump(2);
  EXPECT_EQ(j.value("submitter_name", ""), "submitter") << status.dump(2);
  EXPECT_EQ(j.value("submitter_key", ""), Key("submitter")) << status.dump(2);
  const ProcessResult text = As("reader", {"status", job});
  EXPECT_NE(text.out.find("submitted by submitter (key " + Key("submitter") + ")"),
            std::string::npos)
      << text.Describe();
  const auto rows = testing::QueryStore(state_, "SELECT submitter_key, submitter_name FROM jobs");
  ASSERT_TRUE(rows && rows->size() == 1u);
  EXPECT_EQ((*rows)[0].at("submitter_key"), Key("submitter"));
  EXPECT_EQ((*rows)[0].at("submitter_name"), "submitter");

  // The admin may cancel it.
  const ProcessResult ok = As("ops", {"cancel", job});
  EXPECT_EQ(ok.exit_code, 0) << ok.Describe();
  EXPECT_EQ(WaitForStoredJobState(job, {"cancelled"}, kEventDeadline), "cancelled");
}

// Given a submit key, `drover worker` with it should never register: each
// HELLO is answered with an ERROR, the coordinator logs one line for them
// all (rate-limited), and WORKERS does not list it.
TEST_F(RolesTest, SubmitKeyCannotRegister) {
  ASSERT_NO_FATAL_FAILURE(StartKeyedCoordinator());
  auto* w = StartWorker("intruder", "spawn=1", KeyFlags("submitter"));
  ASSERT_TRUE(w);
  // Two HELLOs refused, seen from the worker's side.
  EXPECT_TRUE(w->WaitForOutput(
      [](const std::string&, const std::string& err) {
        return Occurrences(err, "HELLO refused: this connection's key") >= 2;
      },
      kEventDeadline))
      << w->ErrTail();
  EXPECT_FALSE(WorkerListed("intruder"));
  const std::string line = "refused HELLO from key " + Key("submitter") + " (submitter)";
  EXPECT_TRUE(coordinator()->WaitForStderr(line, kEventDeadline)) << coordinator()->ErrTail();
  EXPECT_EQ(Occurrences(coordinator()->Err(), line), 1u) << coordinator()->ErrTail();
  EXPECT_EQ(Jobs(), 0);
}

// Given an admin key, one key should do everything: register a worker,
// submit, read status, workers and logs, cancel, and retry; and the jobs
// name it as their submitter.
TEST_F(RolesTest, AdminKeyMayDoEverything) {
  ASSERT_NO_FATAL_FAILURE(StartKeyedCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=2", KeyFlags("ops")));
  ASSERT_TRUE(WaitForWorker("w1"));
  EXPECT_TRUE(WorkerListed("w1"));

  Spec("ok.yaml", "version: 1\nname: ok\ntasks:\n  hi: {run: echo hello-from-admin}\n");
  const ProcessResult done = As("ops", {"submit", "ok.yaml", "--wait"});
  ASSERT_EQ(done.exit_code, 0) << done.Describe();
  const ProcessResult logs = As("ops", {"logs", "hi"});
  EXPECT_EQ(logs.exit_code, 0) << logs.Describe();
  EXPECT_NE(logs.out.find("hello-from-admin"), std::string::npos) << logs.Describe();

  Spec("long.yaml", "version: 1\nname: long\ntasks:\n  nap: {run: sleep 30}\n");
  const std::string job = SubmitAs("ops", "long.yaml");
  ASSERT_FALSE(job.empty());
  EXPECT_EQ(As("ops", {"cancel", job}).exit_code, 0);
  EXPECT_EQ(WaitForStoredJobState(job, {"cancelled"}, kEventDeadline), "cancelled");
  const ProcessResult retried = As("ops", {"retry", job});
  EXPECT_EQ(retried.exit_code, 0) << retried.Describe();

  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM jobs WHERE submitter_name = 'ops' AND "
                               "submitter_key = " + testing::SqlQuote(Key("ops"))),
            3);
  EXPECT_EQ(coordinator()->Err().find("refused "), std::string::npos) << coordinator()->ErrTail();
}

// Given a read key whose client announces the ZMTP metadata property
// X-Drover-Role: admin itself (ZMQ_METADATA), its SUBMIT should still be
// refused as read's: the ZAP handler's properties come first and cannot be
// replaced by the peer's.
TEST_F(RolesTest, PeerCannotClaimARoleOfItsOwn) {
  ASSERT_NO_FATAL_FAILURE(StartKeyedCoordinator());
  auto secret = protocol::ReadSecretKeyFile(work_ / "reader.key");
  auto server = protocol::ReadPublicKeyFile(work_ / "coord.pub");
  ASSERT_TRUE(secret.ok() && server.ok());
  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  ASSERT_TRUE(protocol::ConfigureCurveClient(socket, *secret, *server).ok());
  // ZMQ_METADATA, a draft option of libzmq 4.3 (zmq.h hides its name
  // unless ZMQ_BUILD_DRAFT_API; Debian's library accepts it).
  constexpr int kZmqMetadata = 95;
  for (const std::string property : {"X-Drover-Role:admin", "X-Drover-Key-Name:ops"}) {
    if (zmq_setsockopt(socket.handle(), kZmqMetadata, property.data(), property.size()) != 0) {
      GTEST_SKIP() << "this libzmq cannot announce metadata: " << zmq_strerror(zmq_errno());
    }
  }
  socket.connect(endpoint_);
  wire::Submit submit;
  submit.set_spec_text("version: 1\ntasks:\n  t: {run: touch ran}\n");
  submit.set_spec_file("job.yaml");
  ASSERT_TRUE(protocol::Send(socket, protocol::Make(protocol::Command::kSubmit, submit)).ok());

  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, kEventDeadline), 1) << "no answer to SUBMIT";
  auto answer = protocol::Receive(socket, /*router=*/false);
  ASSERT_TRUE(answer && answer->ok());
  ASSERT_EQ((*answer)->command, protocol::Command::kError);
  auto error = protocol::Parse<wire::Error>(**answer);
  ASSERT_TRUE(error.ok());
  EXPECT_NE(error->message().find("SUBMIT refused: this connection's key " + Key("reader") +
                                  " (reader) has role read"),
            std::string::npos)
      << error->message();
  EXPECT_EQ(Jobs(), 0);
}

}  // namespace
}  // namespace drover
