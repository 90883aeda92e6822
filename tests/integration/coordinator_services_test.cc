// Protocol tests of the coordinator's part in the cluster backend: JOB-DONE
// when a job with services of its own ends, SERVICE-RELOAD fanned out to
// the workers and their answers gathered (a worker that never answers, one
// that is lost), the workers' own services (Hello.services) in placement,
// in pending reasons and in WORKERS, and a HELLO that updates them. The
// fixture is coordinator_fixture.h.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/coordinator_fixture.h"

namespace drover {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::Body;
using testing::Command;
using testing::CoordinatorTest;
using testing::FakeClient;
using testing::FakePeer;
using testing::FakeWorker;
using testing::Ok;

// A job whose task uses a service the job declares.
constexpr const char* kJobWithService =
    "version: 1\nname: with-service\n"
    "services:\n  hello: {command: [drover, serve, hello]}\n"
    "tasks:\n  hit: {run: 'curl ${services.hello.port}'}\n";

// A job whose task uses the workers' own service `api`.
constexpr const char* kJobWithWorkerService =
    "version: 1\nname: worker-service\n"
    "services:\n  api: {from: worker}\n"
    "tasks:\n  call: {run: 'curl ${services.api.port}'}\n";

// HELLO offering `services`, on `w`'s connection; waits for WELCOME.
std::optional<wire::Welcome> Hello(FakeWorker& w, const std::string& session,
                                   const std::vector<std::string>& services,
                                   const std::vector<uint64_t>& running = {}) {
  wire::Hello hello;
  hello.set_name(w.name());
  hello.set_hostname("fake-host");
  hello.set_pid(4242);
  hello.set_session(session);
  hello.set_version("test");
  (*hello.mutable_slots())["spawn"] = 4;
  for (const auto& s : services) hello.add_services(s);
  for (uint64_t id : running) hello.add_running(id);
  hello.set_heartbeat_ms(1000);
  w.Send(Command::kHello, hello);
  auto welcome = w.Expect(Command::kWelcome);
  if (!welcome) return std::nullopt;
  return Body<wire::Welcome>(*welcome);
}

wire::ServiceReload ReloadRequest(const std::string& service, const std::string& job = "") {
  wire::ServiceReload r;
  r.set_service(service);
  r.set_job_id(job);
  return r;
}

// The SERVICE-RELOAD the coordinator forwards to `w`.
std::optional<wire::ServiceReload> ExpectReload(FakeWorker& w) {
  auto m = w.Expect(Command::kServiceReload);
  if (!m) return std::nullopt;
  return Body<wire::ServiceReload>(*m);
}

void Answer(FakeWorker& w, uint64_t request_id, std::vector<wire::ReloadedService> services) {
  wire::ServiceReloaded answer;
  answer.set_request_id(request_id);
  for (auto& s : services) *answer.add_services() = std::move(s);
  w.Send(Command::kServiceReloaded, answer);
}

wire::ReloadedService Reloaded(const std::string& job, const std::string& name,
                               const std::string& describe, const std::string& error = "") {
  wire::ReloadedService s;
  s.set_job_id(job);
  s.set_name(name);
  s.set_describe(describe);
  s.set_error(error);
  return s;
}

std::optional<wire::ServiceReloaded> ExpectReloaded(FakeClient& c) {
  auto m = c.Expect(Command::kServiceReloaded);
  if (!m) return std::nullopt;
  return Body<wire::ServiceReloaded>(*m);
}

// Given two workers (the second with no slots, so it runs nothing), a job
// that declares a service and one that does not, should send JOB-DONE with
// the job id to both workers when the first ends, and nothing when the
// second ends.
TEST_F(CoordinatorTest, JobDoneReachesEveryWorkerOnlyForJobsWithServices) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& w1 = AddWorker("w1", 1);
  FakeWorker& w2 = AddWorker("w2", 0);
  FakeClient& client = AddClient();

  auto with = client.Submit(kJobWithService);
  ASSERT_TRUE(with);
  auto d = w1.ExpectDispatch();
  ASSERT_TRUE(d);
  ASSERT_EQ(d->services_size(), 1);
  EXPECT_THAT(d->worker_services(), IsEmpty());
  w1.SendResult(d->attempt_id(), Ok());
  ASSERT_TRUE(w1.ExpectAck());
  for (FakeWorker* w : {&w1, &w2}) {
    auto done = w->Expect(Command::kJobDone);
    ASSERT_TRUE(done) << w->name();
    EXPECT_EQ(Body<wire::JobDone>(*done).job_id(), with->job_id());
  }

  // A fresh client: the first one gets the first job's events.
  auto without = AddClient().Submit(testing::IndependentTasks("plain", 1));
  ASSERT_TRUE(without);
  d = w1.ExpectDispatch();
  ASSERT_TRUE(d);
  w1.SendResult(d->attempt_id(), Ok());
  ASSERT_TRUE(w1.ExpectAck());
  Sync();
  EXPECT_EQ(JobState(without->job_id()), "succeeded");
  ExpectNothingQueued(w1, "w1");
  ExpectNothingQueued(w2, "w2");
}

// Given a job with a service whose worker comes back after a coordinator
// restart without its attempt, should end the job (failed) and send that
// worker JOB-DONE after its WELCOME.
TEST_F(CoordinatorTest, JobDoneAfterARestartComesAfterWelcome) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& before = AddWorker("w1", 1);
  auto submitted = AddClient().Submit(kJobWithService);
  ASSERT_TRUE(submitted);
  ASSERT_TRUE(before.ExpectDispatch());

  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  FakeWorker& fresh =
      *workers_.emplace_back(std::make_unique<FakeWorker>(context_, endpoint_, "w1"));
  ASSERT_TRUE(fresh.RegisterWith("session-new", {{"spawn", 1}}));  // WELCOME first
  auto done = fresh.Expect(Command::kJobDone);
  ASSERT_TRUE(done);
  EXPECT_EQ(Body<wire::JobDone>(*done).job_id(), submitted->job_id());
  Sync();
  EXPECT_EQ(JobState(submitted->job_id()), "failed");
}

// Given a job with a service that ended but is still `running` in the
// store (the coordinator died before noting its end), should end it when
// the restarted coordinator recovers, and send JOB-DONE to a worker that
// registers within the recovery grace, and not to one registering after.
TEST_F(CoordinatorTest, JobDoneOfAJobEndedInRecoveryReachesWorkersRegisteringInTheGrace) {
  options_.liveness = 5;  // the grace: 5 heartbeat intervals
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& before = AddWorker("w1", 1);
  auto submitted = AddClient().Submit(kJobWithService);
  ASSERT_TRUE(submitted);
  auto d = before.ExpectDispatch();
  ASSERT_TRUE(d);
  before.SendResult(d->attempt_id(), Ok());
  ASSERT_TRUE(before.ExpectAck());
  ASSERT_TRUE(before.Expect(Command::kJobDone));

  StopCoordinator();
  probe_.reset();
  reader_.reset();
  {
    auto store = store::Store::Open(state_dir_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    const Status reopened = (*store)->SetJobState(submitted->job_id(), "running", 0);
    ASSERT_TRUE(reopened.ok()) << reopened.ToString();
  }
  options_.endpoints = {std::string(kEndpoint) + "-recovered"};
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  EXPECT_EQ(JobState(submitted->job_id()), "succeeded");

  FakeWorker& in_grace =
      *workers_.emplace_back(std::make_unique<FakeWorker>(context_, endpoint_, "w1"));
  ASSERT_TRUE(in_grace.RegisterWith("session-new", {{"spawn", 1}}));
  auto done = in_grace.Expect(Command::kJobDone);
  ASSERT_TRUE(done);
  EXPECT_EQ(Body<wire::JobDone>(*done).job_id(), submitted->job_id());

  clock_.Advance(std::chrono::seconds(6));
  coordinator_->Poke();
  in_grace.SendHeartbeat();
  Sync();
  FakeWorker& late =
      *workers_.emplace_back(std::make_unique<FakeWorker>(context_, endpoint_, "w2"));
  ASSERT_TRUE(late.RegisterWith("session-late", {{"spawn", 1}}));
  Sync();
  ExpectNothingQueued(late, "a worker registering after the grace");
}

// Given three workers, one of them draining, should forward a client's
// SERVICE-RELOAD to the two others with one fresh request id, and answer
// the client once both answered with one SERVICE-RELOADED that lists every
// service they reloaded (or failed to), each with its worker's name.
TEST_F(CoordinatorTest, ServiceReloadFansOutAndGathersTheAnswers) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& w1 = AddWorker("w1", 1);
  FakeWorker& w2 = AddWorker("w2", 1);
  FakeWorker& w3 = AddWorker("w3", 1);
  w3.SendDraining();
  Sync();
  FakeClient& client = AddClient();
  client.Send(Command::kServiceReload, ReloadRequest("hello"));

  auto r1 = ExpectReload(w1);
  auto r2 = ExpectReload(w2);
  ASSERT_TRUE(r1 && r2);
  EXPECT_NE(r1->request_id(), 0u);
  EXPECT_EQ(r1->request_id(), r2->request_id());
  EXPECT_EQ(r1->service(), "hello");
  EXPECT_EQ(r1->job_id(), "");

  Answer(w2, r2->request_id(), {Reloaded("J1", "hello", "", "instance 2 never became ready")});
  Sync();
  ExpectNothingQueued(client, "client (w1 has not answered)");
  Answer(w1, r1->request_id(),
         {Reloaded("J1", "hello", "2 instances on 127.0.0.1:4000"),
          Reloaded("", "hello", "1 instance on 127.0.0.1:5000")});
  auto reply = ExpectReloaded(client);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->request_id(), 0u);
  EXPECT_THAT(reply->missing(), IsEmpty());
  ASSERT_EQ(reply->services_size(), 3);
  EXPECT_EQ(reply->services(0).worker(), "w1");
  EXPECT_EQ(reply->services(0).job_id(), "");
  EXPECT_EQ(reply->services(1).worker(), "w1");
  EXPECT_EQ(reply->services(1).job_id(), "J1");
  EXPECT_EQ(reply->services(1).describe(), "2 instances on 127.0.0.1:4000");
  EXPECT_EQ(reply->services(2).worker(), "w2");
  EXPECT_EQ(reply->services(2).error(), "instance 2 never became ready");
  Sync();
  ExpectNothingQueued(w3, "the draining worker");

  // A late or repeated answer is ignored.
  Answer(w1, r1->request_id(), {Reloaded("J1", "hello", "again")});
  Sync();
  ExpectNothingQueued(client, "client after a repeated answer");
}

// Given three workers asked to reload, one that answers, one that never
// does and one that is lost meanwhile, should answer the client at the
// reload deadline (FakeClock) with the answer and both others in `missing`.
TEST_F(CoordinatorTest, ServiceReloadListsSilentAndLostWorkersAsMissing) {
  options_.reload_timeout = std::chrono::seconds(30);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& w1 = AddWorker("w1", 1);
  FakeWorker& w2 = AddWorker("w2", 1);
  FakeWorker& w3 = AddWorker("w3", 1);
  FakeClient& client = AddClient();
  client.Send(Command::kServiceReload, ReloadRequest("hello"));
  auto r1 = ExpectReload(w1);
  ASSERT_TRUE(r1 && ExpectReload(w2) && ExpectReload(w3));

  Answer(w1, r1->request_id(), {Reloaded("J1", "hello", "2 instances")});
  w3.SendDisconnect(/*drained=*/false, "crashed");
  Sync();
  ExpectNothingQueued(client, "client before the deadline");

  clock_.Advance(std::chrono::seconds(31));
  coordinator_->Poke();
  auto reply = ExpectReloaded(client);
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->services_size(), 1);
  EXPECT_EQ(reply->services(0).worker(), "w1");
  EXPECT_THAT(reply->missing(), ElementsAre("w2: no answer within 30.00s",
                                            "w3: worker w3 disconnected"));

  // w2's answer after the deadline goes nowhere.
  Answer(w2, r1->request_id(), {Reloaded("J1", "hello", "late")});
  Sync();
  ExpectNothingQueued(client, "client after a late answer");
}

// Given a SERVICE-RELOAD with no worker registered, for an unknown job, for
// a finished job, for a service the job does not declare, or one that every
// worker answers with nothing, should answer ERROR saying which.
TEST_F(CoordinatorTest, ServiceReloadErrors) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeClient& client = AddClient();
  EXPECT_EQ(client.AskError(Command::kServiceReload, ReloadRequest("hello")),
            "no worker is registered");

  FakeWorker& w1 = AddWorker("w1", 1);
  EXPECT_EQ(client.AskError(Command::kServiceReload, ReloadRequest("hello", "nope")),
            "no running job nope");
  auto job = AddClient().Submit(kJobWithService);  // its events go to that client
  ASSERT_TRUE(job);
  auto d = w1.ExpectDispatch();
  ASSERT_TRUE(d);
  EXPECT_EQ(client.AskError(Command::kServiceReload, ReloadRequest("hullo", job->job_id())),
            "job " + job->job_id() + " declares no service 'hullo'");

  client.Send(Command::kServiceReload, ReloadRequest("hello", job->job_id()));
  auto r = ExpectReload(w1);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->job_id(), job->job_id());
  Answer(w1, r->request_id(), {});
  auto error = client.Expect(Command::kError);
  ASSERT_TRUE(error);
  EXPECT_EQ(Body<wire::Error>(*error).message(),
            "no worker runs a service named 'hello' for job " + job->job_id());

  w1.SendResult(d->attempt_id(), Ok());
  ASSERT_TRUE(w1.ExpectAck());
  ASSERT_TRUE(w1.Expect(Command::kJobDone));
  EXPECT_EQ(client.AskError(Command::kServiceReload, ReloadRequest("hello", job->job_id())),
            "job " + job->job_id() + " has already finished (succeeded): its services are "
            "stopped");
}

// Given max_pending_reloads 1 and a client that asks for a reload and goes
// away, should forget its reload once a heartbeat to it fails, so that
// another client's reload is accepted and answered.
TEST_F(CoordinatorTest, ServiceReloadOfAClientThatLeftIsDropped) {
  options_.max_pending_reloads = 1;
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& w1 = AddWorker("w1", 1);
  auto gone = std::make_unique<FakePeer>(context_, endpoint_);
  gone->Send(Command::kServiceReload, ReloadRequest("hello"));
  auto first = ExpectReload(w1);
  ASSERT_TRUE(first);
  FakeClient& client = AddClient();
  EXPECT_EQ(client.AskError(Command::kServiceReload, ReloadRequest("hello")),
            "1 reloads are already in progress; try again later");
  gone.reset();

  // The coordinator learns it is gone when a heartbeat to it fails; the
  // pipe's end reaches the ROUTER asynchronously, hence the bounded retry.
  std::optional<wire::ServiceReload> second;
  for (int i = 0; i < 50 && !second; ++i) {
    w1.SendHeartbeat();
    clock_.Advance(std::chrono::seconds(1));
    coordinator_->Poke();
    Sync();
    client.Send(Command::kServiceReload, ReloadRequest("hello"));
    Sync();  // the request was handled: its answer, if any, is queued
    bool refused = false;
    for (const auto& m : client.Queued()) refused = refused || m.command == Command::kError;
    for (const auto& m : w1.Queued()) {
      if (m.command == Command::kServiceReload) second = Body<wire::ServiceReload>(m);
    }
    ASSERT_TRUE(refused || second) << "the reload was neither refused nor forwarded";
  }
  ASSERT_TRUE(second) << "the reload of the client that left was never dropped";
  EXPECT_NE(second->request_id(), first->request_id());
  Answer(w1, second->request_id(), {Reloaded("J", "hello", "ok")});
  auto reply = ExpectReloaded(client);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->services_size(), 1);
}

// Given a job whose task needs the workers' own service `api`, a worker
// without it and, later, one offering it, should keep the task pending
// with a reason naming the service, then place it on the worker offering
// it, naming `api` in worker_services and not in services.
TEST_F(CoordinatorTest, WorkerServiceTaskGoesOnlyToAWorkerOfferingIt) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& plain = AddWorker("plain", 4);
  FakeClient& client = AddClient();
  auto job = client.Submit(kJobWithWorkerService);
  ASSERT_TRUE(job);
  Sync();
  ExpectNothingQueued(plain, "the worker without the service");
  auto status = client.Status(job->job_id());
  ASSERT_TRUE(status);
  ASSERT_EQ(status->jobs(0).tasks_size(), 1);
  EXPECT_EQ(status->jobs(0).tasks(0).pending_reason(), "no live worker offers service 'api'");

  workers_.push_back(std::make_unique<FakeWorker>(context_, endpoint_, "with-api"));
  FakeWorker& with_api = *workers_.back();
  ASSERT_TRUE(Hello(with_api, "s-api", {"api", "db"}));
  auto d = with_api.ExpectDispatch();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->task(), "call");
  EXPECT_THAT(d->worker_services(), ElementsAre("api"));
  EXPECT_THAT(d->services(), IsEmpty());
  Sync();
  ExpectNothingQueued(plain, "the worker without the service");

  // Only workers' services: no JOB-DONE.
  with_api.SendResult(d->attempt_id(), Ok());
  ASSERT_TRUE(with_api.ExpectAck());
  Sync();
  EXPECT_EQ(JobState(job->job_id()), "succeeded");
  ExpectNothingQueued(with_api, "the worker that ran it");
  ExpectNothingQueued(plain, "the other worker");
}

// Given a registered worker running an attempt that sends HELLO again on
// the same connection (its configuration was reloaded) with new services,
// should keep its attempt, show the new services in WORKERS, and place a
// task that needs one of them on it.
TEST_F(CoordinatorTest, HelloAgainUpdatesServicesAndKeepsAttempts) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  workers_.push_back(std::make_unique<FakeWorker>(context_, endpoint_, "w1"));
  FakeWorker& w1 = *workers_.back();
  ASSERT_TRUE(Hello(w1, "s1", {}));
  FakeClient& client = AddClient();
  auto plain = AddClient().Submit(testing::IndependentTasks("plain", 1));
  ASSERT_TRUE(plain);
  auto first = w1.ExpectDispatch();
  ASSERT_TRUE(first);
  auto job = AddClient().Submit(kJobWithWorkerService);
  ASSERT_TRUE(job);
  Sync();
  ExpectNothingQueued(w1, "w1 before it offers api");

  auto welcome = Hello(w1, "s1", {"api"}, {first->attempt_id()});
  ASSERT_TRUE(welcome);
  EXPECT_THAT(welcome->unknown(), IsEmpty());
  auto second = w1.ExpectDispatch();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->task(), "call");

  auto workers = client.Workers();
  ASSERT_TRUE(workers);
  ASSERT_EQ(workers->workers_size(), 1);
  EXPECT_THAT(workers->workers(0).services(), ElementsAre("api"));
  EXPECT_EQ(workers->workers(0).running(), 2u);

  // The first attempt is still w1's: its result counts.
  w1.SendResult(first->attempt_id(), Ok());
  ASSERT_TRUE(w1.ExpectAck());
  Sync();
  EXPECT_EQ(JobState(plain->job_id()), "succeeded");
}

}  // namespace
}  // namespace drover
