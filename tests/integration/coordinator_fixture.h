// The fixture of the coordinator's protocol tests (coordinator_test.cc and
// the coordinator_*_test.cc files beside it): the real Coordinator loop on
// its own thread, driven over inproc:// by scripted fake workers and clients
// (fake_peer.h), with a real SQLite state directory per test and a
// FakeClock for heartbeat, liveness and retry time.
//
// Synchronisation: every wait is on a message with a real-time deadline.
// "Nothing was sent" is checked after Sync(), two round trips through the
// loop on a separate probe socket: the second answer comes from a turn that
// began after the previous turn had sent everything it decided, so whatever
// the coordinator would send by then is already queued on our sockets.
#ifndef DROVER_TESTS_INTEGRATION_COORDINATOR_FIXTURE_H_
#define DROVER_TESTS_INTEGRATION_COORDINATOR_FIXTURE_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/kinds.h"
#include "core/base/files.h"
#include "core/coordinator/coordinator.h"
#include "core/store/store.h"
#include "tests/integration/fake_peer.h"

namespace drover::testing {

namespace fs = std::filesystem;

inline AttemptOutcome Ok() {
  AttemptOutcome o;
  o.reason = FailureReason::kNone;
  o.exit_code = 0;
  o.wall = std::chrono::milliseconds(12);
  return o;
}

inline AttemptOutcome Exit(int code) {
  AttemptOutcome o;
  o.reason = FailureReason::kExit;
  o.exit_code = code;
  o.wall = std::chrono::milliseconds(7);
  return o;
}

inline AttemptOutcome Cancelled() {
  AttemptOutcome o;
  o.reason = FailureReason::kCancelled;
  o.signal = 15;
  o.message = "cancelled";
  return o;
}

inline std::optional<std::string> ReadFile(const fs::path& path) {
  std::string text;
  if (ReadWholeFile(path.string(), &text) != 0) return std::nullopt;
  return text;
}

// A job of `n` independent tasks t1..tn.
inline std::string IndependentTasks(const std::string& name, int n, const std::string& extra = "") {
  std::string yaml = "version: 1\nname: " + name + "\n" + extra + "tasks:\n";
  for (int i = 1; i <= n; ++i) {
    yaml += "  t" + std::to_string(i) + ": {run: echo " + std::to_string(i) + "}\n";
  }
  return yaml;
}

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-coord-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    state_dir_ = tmpl;
    AddBuiltinTaskKinds(&kinds_);
    options_.spec_options.kinds = &kinds_;
    options_.endpoints = {kEndpoint};
    options_.state_dir = state_dir_;
    options_.heartbeat_interval = std::chrono::seconds(1);
    // Workers outlive every FakeClock advance unless a test lowers this.
    options_.liveness = 1000;
    options_.jitter_seed = 42;
  }

  void TearDown() override {
    StopCoordinator();
    reader_.reset();
    workers_.clear();
    clients_.clear();
    probe_.reset();
    std::error_code ec;
    if (!state_dir_.empty()) fs::remove_all(state_dir_, ec);
  }

  // Opens the coordinator, runs its loop on a thread, and opens the reader
  // store. Call through ASSERT_NO_FATAL_FAILURE.
  void StartCoordinator() {
    coordinator_ = std::make_unique<Coordinator>(context_, options_, *coordinator_clock_);
    const Status opened = coordinator_->Open();
    ASSERT_TRUE(opened.ok()) << opened.ToString();
    ASSERT_FALSE(coordinator_->endpoints().empty());
    endpoint_ = coordinator_->endpoints().front();
    loop_ = std::thread([this] { run_status_ = coordinator_->Run(); });
    probe_ = std::make_unique<FakePeer>(context_, endpoint_);
    auto reader = store::Store::Open(state_dir_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    reader_ = std::move(reader.value());
  }

  void StopCoordinator() {
    if (!coordinator_) return;
    coordinator_->Stop();
    if (loop_.joinable()) loop_.join();
    EXPECT_TRUE(run_status_.ok()) << run_status_.ToString();
    coordinator_.reset();
  }

  // Stops the coordinator and opens a new one on the same state directory
  // (a real SQLite file), as after a crash: the store is all it keeps. An
  // inproc endpoint gets a new name (the old one may not be released yet);
  // peers from before are stale and tests make new ones.
  void RestartCoordinator() {
    StopCoordinator();
    probe_.reset();
    reader_.reset();
    if (options_.endpoints.front().rfind("inproc://", 0) == 0) {
      options_.endpoints = {std::string(kEndpoint) + "-" + std::to_string(++restarts_)};
    }
    StartCoordinator();
  }

  // Adds a fake worker that registers with `hello` as it is (prefetch,
  // takes_recall, ...) and waits for its WELCOME.
  FakeWorker& AddWorkerWithHello(const wire::Hello& hello) {
    workers_.push_back(std::make_unique<FakeWorker>(context_, endpoint_, hello.name()));
    workers_.back()->Send(Command::kHello, hello);
    EXPECT_TRUE(workers_.back()->Expect(Command::kWelcome)) << hello.name();
    return *workers_.back();
  }
  FakeWorker& AddWorker(const std::string& name, uint32_t slots,
                        const std::string& session = "session-1") {
    workers_.push_back(std::make_unique<FakeWorker>(context_, endpoint_, name));
    EXPECT_TRUE(workers_.back()->Register(session, slots)) << name;
    return *workers_.back();
  }

  FakeClient& AddClient() {
    clients_.push_back(std::make_unique<FakeClient>(context_, endpoint_));
    return *clients_.back();
  }

  // Two round trips through the loop (see the file comment).
  void Sync() {
    for (int i = 0; i < 2; ++i) {
      wire::CancelJob ping;
      ping.set_job_id("no-such-job");
      probe_->Send(Command::kCancelJob, ping);
      ASSERT_TRUE(probe_->Expect(Command::kError)) << "sync round trip " << i;
    }
  }

  // Round trips (Sync) until the store reader's answers sent reach `n`
  // (CoordinatorStats::reads_answered); they come off the loop's turn.
  // Fails after 30 s.
  void SyncReads(uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (Stat(&CoordinatorStats::reads_answered) < n) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline)
          << Stat(&CoordinatorStats::reads_answered) << " reads answered, not " << n;
      ASSERT_NO_FATAL_FAILURE(Sync());
    }
  }

  // Asserts that nothing but HEARTBEATs reached `peer` by the last Sync().
  static void ExpectNothingQueued(FakePeer& peer, const std::string& who) {
    for (const auto& m : peer.Queued()) {
      ADD_FAILURE() << who << " got an unexpected " << Name(m.command);
    }
  }

  // A second Store on the state directory, reading what was committed.
  // Open after a successful StartCoordinator().
  store::Store& Reader() { return *reader_; }

  store::TaskRecord Task(const std::string& job_id, const std::string& name) {
    auto tasks = Reader().Tasks(job_id);
    EXPECT_TRUE(tasks.ok()) << tasks.status().ToString();
    if (tasks.ok()) {
      for (const auto& t : *tasks) {
        if (t.name == name) return t;
      }
    }
    ADD_FAILURE() << "no task " << name << " in job " << job_id;
    return {};
  }

  std::vector<store::AttemptRecord> Attempts(const std::string& job_id,
                                             const std::string& task) {
    auto attempts = Reader().Attempts(job_id, task);
    EXPECT_TRUE(attempts.ok()) << attempts.status().ToString();
    return attempts.ok() ? *attempts : std::vector<store::AttemptRecord>{};
  }

  std::string JobState(const std::string& job_id) {
    auto job = Reader().GetJob(job_id);
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    if (!job.ok() || !*job) return "<no job>";
    return (*job)->state;
  }

  uint64_t Stat(const std::atomic<uint64_t> CoordinatorStats::*counter) const {
    return (coordinator_->stats().*counter).load();
  }

  static constexpr const char* kEndpoint = "inproc://coordinator-test";

  zmq::context_t context_;  // first member: outlives every socket below
  FakeClock clock_;
  const Clock* coordinator_clock_ = &clock_;  // a RealClock for real workers
  std::string endpoint_;  // the running coordinator's bound endpoint
  int restarts_ = 0;
  fs::path state_dir_;
  spec::TaskKinds kinds_;  // options_.spec_options.kinds
  CoordinatorOptions options_;
  std::unique_ptr<Coordinator> coordinator_;
  std::thread loop_;
  Status run_status_;
  std::unique_ptr<FakePeer> probe_;
  std::vector<std::unique_ptr<FakeWorker>> workers_;
  std::vector<std::unique_ptr<FakeClient>> clients_;
  std::unique_ptr<store::Store> reader_;
};

}  // namespace drover::testing

#endif  // DROVER_TESTS_INTEGRATION_COORDINATOR_FIXTURE_H_
