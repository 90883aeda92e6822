// What the worker hands a backend with each attempt (TaskAttempt): the
// payload, job, task, number and DROVER_* variables to every one, a
// $DROVER_OUTPUT file only to a backend whose tasks see the environment
// (Backend::TakesEnvironment), and capture paths only to one that may
// write them (Backend::CapturesOutput); and an ACK that rides on a
// DISPATCH. A real Worker in this process with a recording backend,
// against the scripted coordinator of fake_coordinator.h.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/threads/threads_kind.h"
#include "core/protocol/drover.pb.h"
#include "tests/integration/cli_test_util.h"
#include "tests/integration/fake_coordinator.h"
#include "tests/integration/worker_thread.h"
#include "worker/worker.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using protocol::Command;
using testing::FakeCoordinator;

// What the recording backends were handed, by attempt id.
struct Seen {
  std::mutex mu;
  std::map<uint64_t, TaskAttempt> attempts;
};

// Records each attempt and finishes it at once as a success.
class RecordingBackend : public Backend {
 public:
  RecordingBackend(Seen* seen, bool env, bool captures)
      : seen_(seen), env_(env), captures_(captures) {}
  Status Start(BackendEvents* events) override {
    events_ = events;
    return Status::Ok();
  }
  int Capacity() const override { return 4; }
  Status Submit(TaskAttempt a) override {
    const uint64_t id = a.attempt_id;
    {
      std::lock_guard<std::mutex> lock(seen_->mu);
      seen_->attempts[id] = std::move(a);
    }
    AttemptOutcome ok;
    ok.reason = FailureReason::kNone;
    ok.exit_code = 0;
    events_->OnFinished(id, std::move(ok));
    return Status::Ok();
  }
  void Cancel(uint64_t) override {}
  void Shutdown(Duration) override {}
  bool TakesEnvironment() const override { return env_; }
  bool CapturesOutput() const override { return captures_; }

 private:
  Seen* seen_;
  bool env_;
  bool captures_;
  BackendEvents* events_ = nullptr;
};

wire::Dispatch Attempt(uint64_t id, const std::string& backend) {
  wire::Dispatch d;
  d.set_attempt_id(id);
  d.set_job_id("job-attempt");
  d.set_task("t" + std::to_string(id));
  d.set_attempt(2);
  d.set_backend(backend);
  d.set_payload("payload " + std::to_string(id));
  return d;
}

class WorkerAttemptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("drover-worker-attempt");
    ASSERT_FALSE(dir_.empty());
    // Three kinds of backend: as spawn (environment and output), as fork
    // or cluster (output only), as threads (neither).
    struct Kind {
      const char* name;
      bool env;
      bool captures;
    };
    const Kind kinds[] = {
        {"env", true, true}, {"output", false, true}, {"plain", false, false}};
    for (const Kind& kind : kinds) {
      // Plain variables: clang 14 cannot capture structured bindings.
      const bool env = kind.env;
      const bool captures = kind.captures;
      Seen* seen = &seen_;
      ASSERT_TRUE(registry_
                      .Register(kind.name, threads::MakeThreadsTaskKind(),
                                [seen, env, captures](const BackendConfig&)
                                    -> Result<std::unique_ptr<Backend>> {
                                  return std::unique_ptr<Backend>(
                                      new RecordingBackend(seen, env, captures));
                                })
                      .ok());
    }
    options_.coordinator = coordinator_.endpoint();
    options_.name = "w1";
    options_.slots = {{"env", 1}, {"output", 1}, {"plain", 1}};
    options_.spool_dir = dir_ / "spool";
    options_.liveness = 60;
    options_.shutdown_grace = Duration(0);
  }
  void TearDown() override {
    worker_.Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path dir_;
  Seen seen_;
  zmq::context_t context_;
  FakeCoordinator coordinator_{context_};
  BackendRegistry registry_;
  RealClock clock_;
  WorkerOptions options_;
  testing::WorkerThread worker_;
};

// Given one attempt for each kind of backend, each should be handed its
// job, task, number, payload and DROVER_* variables; only the backend
// that takes the environment a $DROVER_OUTPUT file in the spool; and
// capture paths in the spool only the backends that capture.
TEST_F(WorkerAttemptTest, EachBackendIsHandedWhatItUses) {
  ASSERT_TRUE(worker_.Start(context_, options_, registry_, clock_));
  worker_.Run();
  ASSERT_TRUE(coordinator_.Register());
  coordinator_.Send(Command::kDispatch, Attempt(1, "env"));
  coordinator_.Send(Command::kDispatch, Attempt(2, "output"));
  coordinator_.Send(Command::kDispatch, Attempt(3, "plain"));
  for (uint64_t id = 1; id <= 3; ++id) {
    auto r = coordinator_.Result(id);
    ASSERT_TRUE(r) << "attempt " << id;
    EXPECT_EQ(r->reason(), "ok") << id << ": " << r->message();
  }

  std::lock_guard<std::mutex> lock(seen_.mu);
  ASSERT_EQ(seen_.attempts.size(), 3u);
  const std::string spool = options_.spool_dir.string();
  for (const auto& [id, a] : seen_.attempts) {
    EXPECT_EQ(a.job_id, "job-attempt") << id;
    EXPECT_EQ(a.task, "t" + std::to_string(id)) << id;
    EXPECT_EQ(a.number, 2u) << id;
    EXPECT_EQ(a.payload, "payload " + std::to_string(id)) << id;
  }

  for (const auto& [id, a] : seen_.attempts) {
    std::map<std::string, std::string> vars(a.env.begin(), a.env.end());
    EXPECT_EQ(vars["DROVER_JOB_ID"], "job-attempt") << id;
    EXPECT_EQ(vars["DROVER_TASK"], "t" + std::to_string(id)) << id;
    EXPECT_EQ(vars["DROVER_ATTEMPT"], "2") << id;
    EXPECT_EQ(vars["DROVER_WORKER"], "w1") << id;
    EXPECT_EQ(vars.count("DROVER_OUTPUT"), id == 1 ? 1u : 0u) << id;
  }

  const TaskAttempt& env = seen_.attempts.at(1);
  const std::map<std::string, std::string> env_vars(env.env.begin(), env.env.end());
  EXPECT_EQ(env_vars.at("DROVER_OUTPUT"), spool + "/1.outputs");
  EXPECT_EQ(env.stdout_path, spool + "/1.out");
  EXPECT_EQ(env.stderr_path, spool + "/1.err");

  const TaskAttempt& output = seen_.attempts.at(2);
  EXPECT_EQ(output.stdout_path, spool + "/2.out");
  EXPECT_EQ(output.stderr_path, spool + "/2.err");

  const TaskAttempt& plain = seen_.attempts.at(3);
  EXPECT_EQ(plain.stdout_path, "");
  EXPECT_EQ(plain.stderr_path, "");
}

// Given a worker that said it takes ACKs on DISPATCH
// (Hello.takes_dispatch_acks), a result left unACKed, and the next
// DISPATCH carrying its id in `acks`: the worker should forget that result
// as an ACK would make it, so that when it registers again its HELLO
// lists only the result no ACK covered.
TEST_F(WorkerAttemptTest, AnAckOnADispatchIsTakenAsAnAck) {
  ASSERT_TRUE(worker_.Start(context_, options_, registry_, clock_));
  worker_.Run();
  auto hello = coordinator_.Register();
  ASSERT_TRUE(hello);
  EXPECT_TRUE(hello->takes_dispatch_acks());
  coordinator_.Send(Command::kDispatch, Attempt(1, "plain"));
  auto first = coordinator_.Expect<wire::Result>(Command::kResult);  // not ACKed
  ASSERT_TRUE(first);
  EXPECT_EQ(first->attempt_id(), 1u);
  wire::Dispatch next = Attempt(2, "plain");
  next.add_acks(1);
  coordinator_.Send(Command::kDispatch, next);
  auto second = coordinator_.Expect<wire::Result>(Command::kResult);  // not ACKed
  ASSERT_TRUE(second);
  EXPECT_EQ(second->attempt_id(), 2u);

  wire::Disconnect again;
  again.set_reason("not registered: send HELLO");
  coordinator_.Send(Command::kDisconnect, again);
  auto rehello = coordinator_.Expect<wire::Hello>(Command::kHello);
  ASSERT_TRUE(rehello);
  EXPECT_EQ(std::vector<uint64_t>(rehello->running().begin(), rehello->running().end()),
            std::vector<uint64_t>{2});
}

}  // namespace
}  // namespace drover
