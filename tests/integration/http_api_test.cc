// The HTTP front end end to end (docs/api.md): a real `drover coordinator
// --http 127.0.0.1:0` (its URL read back from its stdout), a real worker,
// jobs submitted with the CLI, and requests over loopback HTTP: the JSON
// of each endpoint, paging, 401/403/404 bodies, a task cancelled through
// the API, an event stream, pipeline runs started, and /metrics (the
// coordinator's and `drover worker --metrics`) checked by `promtool check
// metrics` (installed by `tools/setup --promtool` on first use).
#include <httplib.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <string>

#include "tests/integration/distributed_test_util.h"

namespace drover::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr Millis kEventDeadline{30'000};
constexpr char kRead[] = "read-token-0123456789";
constexpr char kAdmin[] = "admin-token-0123456789";

class HttpApiTest : public DistributedTest {
 protected:
  // Starts a coordinator serving HTTP with the two tokens, and worker w1.
  // `extra`: more flags of the coordinator.
  void StartAll(const std::vector<std::string>& extra = {}) {
    WriteFile(work_ / "tokens",
              std::string("read ") + kRead + "\nadmin " + kAdmin + "\n");
    std::vector<std::string> flags = {"--http", "127.0.0.1:0", "--http-token",
                                      (work_ / "tokens").string()};
    flags.insert(flags.end(), extra.begin(), extra.end());
    DaemonProcess* c = StartCoordinator(flags);
    ASSERT_TRUE(c);
    std::smatch m;
    static const std::regex kUrl(R"(\nhttp://127\.0\.0\.1:([0-9]+)\n)");
    ASSERT_TRUE(c->WaitForOutput(
        [&](const std::string& out, const std::string&) {
          return std::regex_search(out, m, kUrl);
        },
        kEventDeadline))
        << c->Out() << c->ErrTail();
    port_ = std::stoi(m[1]);
    ASSERT_TRUE(StartWorker("w1", "spawn=4"));
  }

  httplib::Result Get(const std::string& path, const std::string& token) {
    return GetAt(port_, path, token);
  }
  httplib::Result GetAt(int port, const std::string& path, const std::string& token) {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(30, 0);
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client.Get(path, headers);
  }
  httplib::Result Post(const std::string& path, const std::string& token) {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(30, 0);
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client.Post(path, headers, "", "application/json");
  }
  // The JSON body of a response with `status`; null and a failure otherwise.
  json Body(const httplib::Result& r, int status) {
    if (!r) {
      ADD_FAILURE() << "no HTTP answer: " << httplib::to_string(r.error());
      return json();
    }
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_NE(r->get_header_value("Content-Type").find("application/json"),
              std::string::npos);
    json body = json::parse(r->body, nullptr, false);
    EXPECT_FALSE(body.is_discarded()) << r->body;
    return body;
  }

  // Runs `promtool check metrics` on `text`; false (after GTEST_SKIP) when
  // promtool is not installed and `tools/setup --promtool` cannot install it.
  bool PromtoolAccepts(const std::string& text) {
    WriteFile(work_ / "metrics.txt", text);
    if (RunProcess({"/bin/sh", "-c", "command -v promtool"}, work_, work_, kDeadline)
            .exit_code != 0) {
      RunProcess({std::string(DROVER_SOURCE_DIR) + "/tools/setup", "--promtool"},
                 DROVER_SOURCE_DIR, work_, Millis(600'000));
    }
    if (RunProcess({"/bin/sh", "-c", "command -v promtool"}, work_, work_, kDeadline)
            .exit_code != 0) {
      return false;
    }
    const ProcessResult check =
        RunProcess({"/bin/sh", "-c", "promtool check metrics < metrics.txt"}, work_,
                   work_, kDeadline);
    EXPECT_EQ(check.exit_code, 0) << check.Describe() << "\n" << text;
    return true;
  }

  int port_ = 0;
};

// Given a coordinator with --pipelines, GET /api/v1/pipelines should list
// the pipeline with as many next runs as `next` asks (a bad `next` is a
// 400), and nothing without a token (401).
TEST_F(HttpApiTest, ListsPipelines) {
  fs::create_directories(work_ / "pipelines");
  WriteFile(
      work_ / "pipelines" / "yearly.yaml",
      "version: 1\nname: yearly\nschedule: \"@yearly\"\ntasks:\n  t: {run: echo}\n");
  StartAll({"--pipelines", (work_ / "pipelines").string()});
  json doc = Body(Get("/api/v1/pipelines?next=2", kRead), 200);
  EXPECT_EQ(doc["dir"], (work_ / "pipelines").string());
  ASSERT_EQ(doc["pipelines"].size(), 1u) << doc.dump();
  const json& p = doc["pipelines"][0];
  EXPECT_EQ(p["name"], "yearly");
  EXPECT_EQ(p["schedule"], "@yearly");
  EXPECT_EQ(p["concurrency"], "skip");
  EXPECT_EQ(p["next_runs_unix_ms"].size(), 2u);
  EXPECT_TRUE(p["last_run"].is_null());
  EXPECT_TRUE(p["error"].is_null());
  Body(Get("/api/v1/pipelines?next=x", kRead), 400);
  auto denied = Get("/api/v1/pipelines", "");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 401);
}

// Given pipelines with concurrency skip and queue, POST
// /api/v1/pipelines/NAME/runs should start a run as `drover pipelines run`
// does: 201 with the job (recorded with trigger manual), 409 while it runs
// under skip, 202 under queue, 404 for an unknown name, and nothing
// without an admin token (401, 403).
TEST_F(HttpApiTest, StartsPipelineRuns) {
  fs::create_directories(work_ / "pipelines");
  WriteFile(work_ / "pipelines" / "skip.yaml",
            "version: 1\nname: skipper\nschedule: \"@yearly\"\n"
            "tasks:\n  nap: {run: sleep 60}\n");
  WriteFile(work_ / "pipelines" / "queue.yaml",
            "version: 1\nname: queuer\nschedule: \"@yearly\"\nconcurrency: queue\n"
            "tasks:\n  nap: {run: sleep 60}\n");
  StartAll({"--pipelines", (work_ / "pipelines").string()});

  Body(Post("/api/v1/pipelines/skipper/runs", ""), 401);
  Body(Post("/api/v1/pipelines/skipper/runs", kRead), 403);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM jobs"), 0);
  json missing = Body(Post("/api/v1/pipelines/nope/runs", kAdmin), 404);
  EXPECT_NE(missing["error"]["message"].get<std::string>().find("no pipeline 'nope'"),
            std::string::npos)
      << missing.dump();

  json started = Body(Post("/api/v1/pipelines/skipper/runs", kAdmin), 201);
  EXPECT_EQ(started["pipeline"], "skipper");
  EXPECT_EQ(started["queued"], false);
  EXPECT_EQ(started["tasks"], 1);
  const std::string job = started["job"].get<std::string>();
  ASSERT_FALSE(job.empty());
  json refused = Body(Post("/api/v1/pipelines/skipper/runs", kAdmin), 409);
  EXPECT_NE(refused["error"]["message"].get<std::string>().find("concurrency: skip"),
            std::string::npos)
      << refused.dump();

  json first = Body(Post("/api/v1/pipelines/queuer/runs", kAdmin), 201);
  json waits = Body(Post("/api/v1/pipelines/queuer/runs", kAdmin), 202);
  EXPECT_EQ(waits["queued"], true);
  EXPECT_NE(waits["message"].get<std::string>().find(first["job"].get<std::string>()),
            std::string::npos)
      << waits.dump();
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM jobs"), 2);

  json list = Body(Get("/api/v1/pipelines", kRead), 200);
  bool seen = false;
  for (const json& p : list["pipelines"]) {
    if (p["name"] != "skipper") continue;
    seen = true;
    EXPECT_EQ(p["last_run"]["job_id"], job) << p.dump();
    EXPECT_EQ(p["last_run"]["trigger"], "manual") << p.dump();
  }
  EXPECT_TRUE(seen) << list.dump();
}

// Given a finished job with a matrix task, the API should list it, show its
// DAG with the matrix as one node, page its instances, show one instance
// and its log, list the worker, and answer errors as JSON with the right
// status; without a token nothing is answered and nothing changes.
TEST_F(HttpApiTest, ServesJobsGraphTasksLogsAndWorkers) {
  StartAll();
  Spec("m.yaml", R"(version: 1
name: shards
tasks:
  prep: {run: 'echo prepared; echo greeting=hello >> "$DROVER_OUTPUT"'}
  shard:
    needs: [prep]
    matrix: {i: [1, 2, 3]}
    run: echo shard ${matrix.i}
)");
  const std::string job = Submit("m.yaml");
  ASSERT_FALSE(job.empty());
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kEventDeadline), "succeeded");

  // 401 without a token or with a wrong one, as JSON.
  json unauth = Body(Get("/api/v1/jobs", ""), 401);
  EXPECT_EQ(unauth["error"]["status"], 401);
  Body(Get("/api/v1/jobs", "wrong-token-0123456789"), 401);
  Body(Get("/metrics", ""), 401);

  json jobs = Body(Get("/api/v1/jobs?state=succeeded&name=shard", kRead), 200);
  ASSERT_EQ(jobs["jobs"].size(), 1u) << jobs.dump(2);
  EXPECT_EQ(jobs["jobs"][0]["id"], job);
  EXPECT_EQ(jobs["jobs"][0]["counts"]["succeeded"], 4);
  EXPECT_EQ(jobs["jobs"][0]["progress"], 1.0);
  EXPECT_EQ(Body(Get("/api/v1/jobs?state=failed", kRead), 200)["jobs"].size(), 0u);

  json one = Body(Get("/api/v1/jobs/" + job, kRead), 200);
  ASSERT_EQ(one["graph"]["nodes"].size(), 2u) << one.dump(2);
  const json& shard = one["graph"]["nodes"][1];
  EXPECT_EQ(shard["name"], "shard");
  EXPECT_EQ(shard["matrix"], true);
  EXPECT_EQ(shard["instances"], 3);
  EXPECT_EQ(shard["needs"], json::array({"prep"}));
  EXPECT_EQ(shard["counts"]["succeeded"], 3);

  json page1 =
      Body(Get("/api/v1/jobs/" + job + "/tasks?group=shard&limit=2", kRead), 200);
  EXPECT_EQ(page1["total"], 3);
  ASSERT_EQ(page1["tasks"].size(), 2u);
  EXPECT_EQ(page1["tasks"][0]["name"], "shard[i=1]");
  json page2 = Body(
      Get("/api/v1/jobs/" + job + "/tasks?group=shard&limit=2&offset=2", kRead), 200);
  ASSERT_EQ(page2["tasks"].size(), 1u);
  EXPECT_EQ(page2["tasks"][0]["name"], "shard[i=3]");
  Body(Get("/api/v1/jobs/" + job + "/tasks?state=runing", kRead), 400);

  const std::string task = "shard%5Bi%3D2%5D";  // shard[i=2], URL-encoded
  json t = Body(Get("/api/v1/jobs/" + job + "/tasks/" + task, kRead), 200);
  EXPECT_EQ(t["state"], "succeeded");
  EXPECT_EQ(t["worker"], "w1");
  EXPECT_EQ(t["finished_attempts"].size(), 1u);
  json log = Body(Get("/api/v1/jobs/" + job + "/tasks/" + task + "/log", kRead), 200);
  EXPECT_EQ(log["stdout"], "shard 2\n");
  EXPECT_EQ(log["done"], true);

  json prep = Body(Get("/api/v1/jobs/" + job + "/tasks/prep", kRead), 200);
  EXPECT_EQ(prep["outputs"], json({{"greeting", "hello"}})) << prep.dump();
  EXPECT_EQ(t["outputs"], json::object()) << t.dump();

  json missing = Body(Get("/api/v1/jobs/20000101-000000-0000", kRead), 404);
  EXPECT_NE(missing["error"]["message"].get<std::string>().find("no job"),
            std::string::npos);
  Body(Get("/api/v1/jobs/" + job + "/tasks/nope", kRead), 404);
  Body(Get("/api/v1/nothing", kRead), 404);

  json workers = Body(Get("/api/v1/workers", kRead), 200);
  ASSERT_EQ(workers["workers"].size(), 1u);
  EXPECT_EQ(workers["workers"][0]["name"], "w1");
  EXPECT_EQ(workers["workers"][0]["slots"]["spawn"]["total"], 4);
  EXPECT_EQ(workers["workers"][0]["state"], "ready");

  // Actions: a read token is refused (403) and nothing happens; without a
  // token 401; an admin token retries the job.
  Body(Post("/api/v1/jobs/" + job + "/retry", kRead), 403);
  Body(Post("/api/v1/jobs/" + job + "/retry", ""), 401);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM jobs"), 1);
  json retried = Body(Post("/api/v1/jobs/" + job + "/retry", kAdmin), 201);
  EXPECT_NE(retried["job"], job);
  EXPECT_EQ(retried["carried_over"], 4);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM jobs"), 2);

  // A finished job's event stream says how it ended, then ends.
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(30, 0);
  std::string events;
  auto r = client.Get("/api/v1/jobs/" + job + "/events?access_token=" + kRead,
                      [&](const char* data, size_t n) {
                        events.append(data, n);
                        return true;
                      });
  ASSERT_TRUE(r);
  EXPECT_NE(events.find("event: job\ndata: {"), std::string::npos) << events;
  EXPECT_NE(events.find("\"state\":\"succeeded\""), std::string::npos) << events;
}

// Given a running task, POST .../tasks/NAME/cancel with the admin token
// should cancel it: the API then shows it cancelled with its reason.
TEST_F(HttpApiTest, CancelsARunningTask) {
  StartAll();
  Spec("slow.yaml", R"(version: 1
name: slow
tasks:
  nap: {run: sleep 60}
  quick: {run: echo quick}
)");
  const std::string job = Submit("slow.yaml");
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(PollUntil(
      [&] {
        auto r = Get("/api/v1/jobs/" + job + "/tasks/nap", kRead);
        return r && r->status == 200 && json::parse(r->body)["state"] == "running";
      },
      kEventDeadline, kClientPollInterval));
  Body(Post("/api/v1/jobs/" + job + "/tasks/nap/cancel", kRead), 403);
  json ok = Body(Post("/api/v1/jobs/" + job + "/tasks/nap/cancel", kAdmin), 202);
  EXPECT_NE(ok["message"].get<std::string>().find("cancelling task 'nap'"),
            std::string::npos);
  EXPECT_EQ(WaitForJobState(job, {"succeeded", "failed", "cancelled"}, kEventDeadline),
            "failed");
  json t = Body(Get("/api/v1/jobs/" + job + "/tasks/nap", kRead), 200);
  EXPECT_EQ(t["state"], "cancelled");
  EXPECT_EQ(t["reason"], "cancelled");
  // Cancelling it again is a conflict, as JSON.
  json again = Body(Post("/api/v1/jobs/" + job + "/tasks/nap/cancel", kAdmin), 409);
  EXPECT_EQ(again["error"]["status"], 409);
}

// Given jobs that ran, one storing a 5-byte artifact, /metrics should be
// Prometheus text that promtool accepts, with the families
// docs/operations.md lists and the artifact store's size.
TEST_F(HttpApiTest, MetricsPassPromtool) {
  StartAll();
  Spec("ok.yaml",
       "version: 1\nname: ok\ntasks:\n  a: {run: \"printf 12345 > a.txt\", artifacts: "
       "a.txt}\n"
       "  b: {run: exit 3}\n");
  const std::string job = Submit("ok.yaml");
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kEventDeadline), "failed");
  auto r = Get("/metrics", kRead);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain; version=0.0.4"),
            std::string::npos);
  const std::string& text = r->body;
  for (const char* family :
       {"drover_dispatches_total{backend=\"spawn\"} 2",
        "drover_results_total{backend=\"spawn\",reason=\"ok\"} 1",
        "drover_results_total{backend=\"spawn\",reason=\"exit\"} 1",
        "drover_attempt_duration_seconds_count{backend=\"spawn\"} 2",
        "drover_workers{state=\"ready\"} 1",
        "drover_store_commit_duration_seconds_bucket", "drover_messages_rejected_total",
        "drover_peer_queued_bytes", "drover_ready_queue_depth",
        "drover_worker_heartbeats_missed", "drover_artifact_store_bytes 5\n",
        "drover_artifact_store_blobs 1\n"}) {
    EXPECT_NE(text.find(family), std::string::npos) << family << "\n" << text;
  }
  if (!PromtoolAccepts(text)) {
    GTEST_SKIP()
        << "SKIPPED: promtool is not installed and `tools/setup --promtool` could not "
           "install it (Debian package prometheus)";
  }
}

// Given `drover worker --metrics 127.0.0.1:0 --metrics-token FILE`, the
// worker should print its metrics URL, refuse a scrape without a token
// (401), and serve Prometheus text that promtool accepts: registered, its
// slots and the busy one while a task runs, then attempts by outcome, and
// the artifact cache holding the input it staged.
TEST_F(HttpApiTest, WorkerServesMetrics) {
  WriteFile(work_ / "tokens", std::string("read ") + kRead + "\n");
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* w = StartWorker(
      "w1", "spawn=2",
      {"--metrics", "127.0.0.1:0", "--metrics-token", (work_ / "tokens").string()});
  ASSERT_TRUE(w);
  const std::optional<std::string> url = w->WaitForFirstLine(kEventDeadline);
  ASSERT_TRUE(url) << w->ErrTail();
  std::smatch m;
  static const std::regex kUrl(R"(^http://127\.0\.0\.1:([0-9]+)$)");
  ASSERT_TRUE(std::regex_match(*url, m, kUrl)) << *url;
  const int port = std::stoi(m[1]);

  auto scrape = [&] {
    auto r = GetAt(port, "/metrics", kRead);
    return r && r->status == 200 ? r->body : std::string();
  };
  auto denied = GetAt(port, "/metrics", "");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 401);
  Body(GetAt(port, "/api/v1/jobs", kRead), 404);
  ASSERT_TRUE(PollUntil(
      [&] { return scrape().find("drover_worker_registered 1\n") != std::string::npos; },
      kEventDeadline, kClientPollInterval));

  const fs::path release = work_ / "release";
  Spec("m.yaml", R"(version: 1
name: metered
tasks:
  make: {run: "printf 12345 > a.txt", artifacts: a.txt}
  use: {needs: [make], run: "cat $DROVER_INPUTS/make/a.txt"}
  bad: {run: exit 3}
  hold: {run: "while [ ! -f )" +
                     release.string() + R"( ]; do sleep 0.05; done"}
)");
  const std::string job = Submit("m.yaml");
  ASSERT_FALSE(job.empty());
  // `hold` holds one of the two slots until it is released.
  ASSERT_TRUE(PollUntil(
      [&] {
        const std::string text = scrape();
        return text.find(
                   "drover_worker_attempts_total{backend=\"spawn\",reason=\"ok\"} 2\n") !=
                   std::string::npos &&
               text.find("drover_worker_slots_used{backend=\"spawn\"} 1\n") !=
                   std::string::npos;
      },
      kEventDeadline, kClientPollInterval))
      << scrape();
  WriteFile(release, "");
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kEventDeadline), "failed");
  const std::string text = scrape();
  for (const char* sample :
       {"drover_worker_slots{backend=\"spawn\"} 2\n",
        "drover_worker_slots_used{backend=\"spawn\"} 0\n",
        "drover_worker_attempts_total{backend=\"spawn\",reason=\"ok\"} 3\n",
        "drover_worker_attempts_total{backend=\"spawn\",reason=\"exit\"} 1\n",
        "drover_worker_attempt_duration_seconds_count{backend=\"spawn\"} 4\n",
        "drover_worker_artifact_cache_bytes 5\n",
        "drover_worker_artifact_cache_blobs 1\n", "drover_worker_spool_bytes "}) {
    EXPECT_NE(text.find(sample), std::string::npos) << sample << "\n" << text;
  }
  if (!PromtoolAccepts(text)) {
    GTEST_SKIP() << "SKIPPED: promtool is not installed (Debian package prometheus)";
  }
}

// Given a non-loopback --metrics address without --metrics-token, the
// worker should refuse to start, naming the flag.
TEST_F(HttpApiTest, WorkerRefusesNonLoopbackMetricsWithoutTokens) {
  ASSERT_TRUE(StartCoordinator());
  const ProcessResult r = Drover(
      {"worker", "--connect", endpoint_, "--slots", "spawn=1", "--metrics", "0.0.0.0:0"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("refusing to serve HTTP on 0.0.0.0 without tokens"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--metrics-token FILE"), std::string::npos) << r.err;
}

// `drover run JOB --http 127.0.0.1:0` in work_: the process, and the port
// of the URL it prints on stderr ("drover: dashboard and API at URL").
struct EmbeddedRun {
  DaemonProcess* process = nullptr;
  int port = 0;
};

class HttpRunTest : public HttpApiTest {
 protected:
  // Starts `drover run` of a job whose task `hold` writes its pid to
  // work_/hold.pid and runs until work_/release exists, and waits for the
  // URL. A failure is recorded when it does not come.
  EmbeddedRun StartRun() {
    Spec("held.yaml",
         "version: 1\nname: held\ntasks:\n  quick: {run: echo quick}\n"
         "  hold: {run: 'echo $$ > " +
             (work_ / "hold.pid").string() + "; while [ ! -f " +
             (work_ / "release").string() + " ]; do sleep 0.05; done; echo released'}\n");
    EmbeddedRun run;
    run.process = StartClient({"run", "held.yaml", "--http", "127.0.0.1:0"});
    if (!run.process) return run;
    std::smatch m;
    static const std::regex kUrl(
        R"(drover: dashboard and API at http://127\.0\.0\.1:([0-9]+)\n)");
    if (!run.process->WaitForOutput(
            [&](const std::string&, const std::string& err) {
              return std::regex_search(err, m, kUrl);
            },
            kEventDeadline)) {
      ADD_FAILURE() << "no URL from drover run --http: " << run.process->ErrTail();
      return run;
    }
    run.port = std::stoi(m[1]);
    return run;
  }

  // The pid `hold` wrote, once it runs; 0 when it did not.
  pid_t HoldPid() {
    pid_t pid = 0;
    PollUntil(
        [&] {
          std::ifstream in(work_ / "hold.pid");
          return static_cast<bool>(in >> pid) && pid > 0;
        },
        kEventDeadline, kClientPollInterval);
    return pid;
  }
};

// Whether `pid` still runs: a zombie (killed, re-parented to this
// subreaper, not yet reaped) does not.
bool Running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

// Given `drover run --http 127.0.0.1:0`, the API should answer while the
// job runs (the job running, its task running, the embedded worker, the
// log, /metrics); when the job ends drover run should exit 0 and stop
// listening.
TEST_F(HttpRunTest, ServesTheApiWhileTheJobRuns) {
  const EmbeddedRun run = StartRun();
  ASSERT_NE(run.port, 0);
  ASSERT_GT(HoldPid(), 0) << run.process->ErrTail();
  json jobs = Body(GetAt(run.port, "/api/v1/jobs", ""), 200);
  ASSERT_EQ(jobs["jobs"].size(), 1u) << jobs.dump();
  EXPECT_EQ(jobs["jobs"][0]["name"], "held");
  EXPECT_EQ(jobs["jobs"][0]["state"], "running");
  const std::string job = jobs["jobs"][0]["id"];
  json hold = Body(GetAt(run.port, "/api/v1/jobs/" + job + "/tasks/hold", ""), 200);
  EXPECT_EQ(hold["state"], "running") << hold.dump();
  json workers = Body(GetAt(run.port, "/api/v1/workers", ""), 200);
  ASSERT_EQ(workers["workers"].size(), 1u) << workers.dump();
  EXPECT_EQ(workers["workers"][0]["name"], "local");
  ASSERT_TRUE(PollUntil(
      [&] {
        auto r = GetAt(run.port, "/api/v1/jobs/" + job + "/tasks/quick/log", "");
        return r && r->status == 200 && json::parse(r->body)["stdout"] == "quick\n";
      },
      kEventDeadline, kClientPollInterval));
  auto metrics = GetAt(run.port, "/metrics", "");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("drover_jobs_running 1\n"), std::string::npos)
      << metrics->body;

  WriteFile(work_ / "release", "");
  const ProcessResult done = run.process->Wait(kEventDeadline);
  EXPECT_EQ(done.exit_code, 0) << done.Describe();
  httplib::Client client("127.0.0.1", run.port);
  client.set_connection_timeout(5, 0);
  EXPECT_FALSE(client.Get("/api/v1/jobs")) << "still listening after drover run ended";
}

// Given `drover run --http` interrupted (SIGINT) while a task runs, the job
// should be cancelled through the same path as without --http: drover run
// exits 1, the task's process is gone, and nothing listens any more.
TEST_F(HttpRunTest, InterruptedRunStopsItsTasksAndListener) {
  const EmbeddedRun run = StartRun();
  ASSERT_NE(run.port, 0);
  const pid_t hold = HoldPid();
  ASSERT_GT(hold, 0) << run.process->ErrTail();
  Body(GetAt(run.port, "/api/v1/jobs", ""), 200);
  ASSERT_TRUE(run.process->Signal(SIGINT));
  const ProcessResult done = run.process->Wait(kEventDeadline);
  EXPECT_EQ(done.exit_code, 1) << done.Describe();
  EXPECT_FALSE(Running(hold)) << "task process " << hold << " outlived drover run";
  httplib::Client client("127.0.0.1", run.port);
  client.set_connection_timeout(5, 0);
  EXPECT_FALSE(client.Get("/api/v1/jobs")) << "still listening after drover run ended";
}

// Given a non-loopback --http address without --http-token, the
// coordinator should refuse to start, saying why.
TEST_F(HttpApiTest, RefusesNonLoopbackWithoutTokens) {
  const ProcessResult r = Drover({"coordinator", "--listen", "tcp://127.0.0.1:0",
                                  "--state-dir", state_.string(), "--http", "0.0.0.0:0"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("refusing to serve HTTP on 0.0.0.0 without tokens"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace drover::testing
