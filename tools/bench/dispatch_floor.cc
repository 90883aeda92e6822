// dispatch_floor: the limit `tools/bench/bench dispatch` reads drover
// against. The least a durable coordinator must do for a no-op task, with
// nothing else: the same rows in the same SQLite file as drover's store
// (its schema, indexes and pragmas, made by store::Store::Open), its
// checkpoints on a thread of their own (store::WalCheckpointer), one
// transaction a loop turn, and the same messages over TCP loopback to two
// worker processes that run the task inline.
//
//   dispatch_floor --tasks N [--slots 32] --state-dir DIR
//
// The coordinator (this process) binds a ROUTER on tcp://127.0.0.1:0 and
// starts two copies of itself as workers (`--worker ENDPOINT`, a DEALER
// each, SLOTS tasks in flight each). Every loop turn it
//   - reads every RESULT waiting and, for each, inserts the attempt's row
//     whole, which stands for the task's row, as drover does for a task
//     that succeeds on its first attempt (docs/state.md), and deletes the
//     dispatch log's rows whose attempts have all ended;
//   - fills every free slot: the attempt queued, and its entry in the
//     turn's row of the dispatch log (INSERT INTO dispatches, one row);
//   - COMMITs, then sends each worker one ACK of the results it recorded
//     and one DISPATCH of the attempts queued for it: nothing leaves before
//     it is durable.
// A worker answers each DISPATCH with one RESULT of all its attempts, each
// run by calling a no-op function. Messages are plain bytes, no protobuf:
// the limit has no encoding cost.
//
// Prints one JSON line: {"tasks": N, "seconds": S, "tasks_per_s": R,
// "commits": C}. The
// clock runs from the first dispatch to the commit of the last result.
// Exit status 0 on success, 1 on an error (named on stderr), 2 on usage.
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "core/store/store.h"
#include "core/store/wal_checkpointer.h"
#include "tools/bench/bench_store.h"

extern char** environ;

namespace {

using drover::bench::Fail;
using drover::bench::kDeleteDispatch;
using drover::bench::kInsertDispatch;
using drover::bench::kInsertFinishedAttempt;
using drover::bench::MakeStateDir;
using drover::bench::OpenStateDb;
using drover::bench::Prepare;
using drover::bench::Step;

using Clock = std::chrono::steady_clock;

// The task a worker runs: called through a volatile pointer so that it is
// a real call, as the threads backend's `noop` is.
int Noop(uint64_t x) { return static_cast<int>(x & 1); }
int (*volatile g_task)(uint64_t) = Noop;

void PutU64(std::string& out, uint64_t v) {
  out.append(reinterpret_cast<const char*>(&v), 8);
}
uint64_t GetU64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// A worker: HELLO, then one RESULT (8-byte attempt ids followed by the
// task's return value) for each DISPATCH (8-byte attempt ids); an empty
// message ends it. ACKs are read and dropped.
int RunWorker(const std::string& endpoint) {
  // Ends with the coordinator, whatever ends it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  s.send(zmq::str_buffer("H"), zmq::send_flags::none);
  std::string result;
  for (;;) {
    zmq::message_t m;
    if (!s.recv(m)) continue;
    const char* p = static_cast<const char*>(m.data());
    if (m.size() == 0) return 0;
    if (p[0] == 'A') continue;
    if (p[0] != 'D' || (m.size() - 1) % 8 != 0) Fail("worker: unexpected message");
    result.assign("R");
    for (size_t off = 1; off < m.size(); off += 8) {
      const uint64_t id = GetU64(p + off);
      PutU64(result, id);
      PutU64(result, static_cast<uint64_t>(g_task(id)));
    }
    s.send(zmq::buffer(result), zmq::send_flags::none);
  }
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Worker {
  std::string identity;
  std::string name;  // as drover's attempts name their worker
  uint32_t in_flight = 0;
  std::string dispatch;  // "D" + ids queued this turn
  std::string ack;       // "A" + ids recorded this turn
};

int RunCoordinator(const std::string& self, uint64_t tasks, uint32_t slots,
                   const std::filesystem::path& dir) {
  const std::string job_id = "20261203-000000-f100";
  MakeStateDir(dir, job_id, "floor", tasks, NowMs());
  sqlite3* db = OpenStateDb(dir);
  // Its checkpoints off this thread, as drover's store does them.
  auto checkpointer = drover::store::WalCheckpointer::Start(
      db, (dir / "state.db").string(), drover::store::WalCheckpointer::Limits{});
  if (!checkpointer.ok()) Fail(checkpointer.status().message());
  sqlite3_stmt* begin = Prepare(db, "BEGIN");
  sqlite3_stmt* commit = Prepare(db, "COMMIT");
  sqlite3_stmt* insert_attempt = Prepare(db, kInsertFinishedAttempt);
  sqlite3_stmt* insert_dispatch = Prepare(db, kInsertDispatch);
  sqlite3_stmt* delete_dispatch = Prepare(db, kDeleteDispatch);

  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:0");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);

  std::vector<pid_t> pids;
  for (int i = 0; i < 2; ++i) {
    std::vector<char*> argv{const_cast<char*>(self.c_str()),
                            const_cast<char*>("--worker"),
                            const_cast<char*>(endpoint.c_str()), nullptr};
    pid_t pid;
    if (posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      Fail("spawn a worker");
    }
    pids.push_back(pid);
  }
  std::vector<Worker> workers;
  while (workers.size() < 2) {
    zmq::message_t id, body;
    if (!router.recv(id) || !router.recv(body)) continue;
    workers.push_back(
        Worker{id.to_string(), "w" + std::to_string(workers.size() + 1), 0, "D", "A"});
  }

  // Names, started_ms, workers and log rows are kept per attempt, as the
  // coordinator's memory holds them; and each log row's attempts not ended.
  std::vector<std::string> names(tasks);
  std::vector<int64_t> started(tasks);
  std::vector<const Worker*> worker_of(tasks);
  std::vector<uint64_t> row_of(tasks);
  std::vector<uint32_t> open_in_row(tasks + 1, 0);  // by the row's first id
  std::vector<uint64_t> rows_done;
  std::string log;
  for (uint64_t i = 0; i < tasks; ++i) names[i] = "noop[i=" + std::to_string(i) + "]";
  const std::string result_json = "null";

  uint64_t next = 0, done = 0, commits = 0;
  const auto t0 = Clock::now();
  while (done < tasks) {
    Step(db, begin);
    // Results: every message waiting. The turn waits for one only when no
    // slot is free or nothing is left to dispatch.
    const bool can_dispatch =
        next < tasks && (workers[0].in_flight < slots || workers[1].in_flight < slots);
    auto flags = can_dispatch ? zmq::recv_flags::dontwait : zmq::recv_flags::none;
    for (;;) {
      zmq::message_t id, body;
      if (!router.recv(id, flags)) break;
      if (!router.recv(body)) Fail("a message without a body");
      flags = zmq::recv_flags::dontwait;
      Worker* w = nullptr;
      for (Worker& c : workers) {
        if (c.identity == id.to_string_view()) w = &c;
      }
      const char* p = static_cast<const char*>(body.data());
      if (!w || body.size() < 1 || p[0] != 'R' || (body.size() - 1) % 16 != 0) {
        Fail("an unexpected message from a worker");
      }
      const int64_t now = NowMs();
      for (size_t off = 1; off < body.size(); off += 16) {
        const uint64_t aid = GetU64(p + off);
        const uint64_t t = aid - 1;
        if (t >= tasks) Fail("a result for an attempt never sent");
        if (worker_of[t] == nullptr) Fail("a result for an attempt already finished");
        sqlite3_bind_int64(insert_attempt, 1, static_cast<int64_t>(aid));
        sqlite3_bind_text(insert_attempt, 2, job_id.data(),
                          static_cast<int>(job_id.size()), SQLITE_STATIC);
        sqlite3_bind_text(insert_attempt, 3, names[t].data(),
                          static_cast<int>(names[t].size()), SQLITE_STATIC);
        sqlite3_bind_text(insert_attempt, 4, worker_of[t]->name.data(),
                          static_cast<int>(worker_of[t]->name.size()), SQLITE_STATIC);
        sqlite3_bind_int64(insert_attempt, 5, started[t]);
        sqlite3_bind_int64(insert_attempt, 6, static_cast<int64_t>(t));
        sqlite3_bind_int64(insert_attempt, 7, now);
        sqlite3_bind_text(insert_attempt, 8, result_json.data(),
                          static_cast<int>(result_json.size()), SQLITE_STATIC);
        Step(db, insert_attempt);
        worker_of[t] = nullptr;
        if (--open_in_row[row_of[t]] == 0) rows_done.push_back(row_of[t]);
        PutU64(w->ack, aid);
        --w->in_flight;
        ++done;
      }
    }
    for (uint64_t row : rows_done) {
      sqlite3_bind_int64(delete_dispatch, 1, static_cast<int64_t>(row));
      Step(db, delete_dispatch);
    }
    rows_done.clear();
    // Every free slot, fewest in flight first.
    log.assign("[");
    const uint64_t first = next + 1;
    for (;;) {
      Worker* w = &workers[0];
      if (workers[1].in_flight < w->in_flight) w = &workers[1];
      if (w->in_flight >= slots || next == tasks) break;
      const uint64_t t = next++;
      const uint64_t aid = t + 1;
      started[t] = NowMs();
      worker_of[t] = w;
      row_of[t] = first;
      ++open_in_row[first];
      // [id,"job","task",number,"worker",started_ms,task_idx], as drover's
      // log holds it (the names need no escaping).
      if (log.size() > 1) log += ',';
      log += '[' + std::to_string(aid) + ",\"" + job_id + "\",\"" + names[t] + "\",1,\"" +
             w->name + "\"," + std::to_string(started[t]) + ',' + std::to_string(t) + ']';
      PutU64(w->dispatch, aid);
      ++w->in_flight;
    }
    if (next + 1 > first) {
      log += ']';
      sqlite3_bind_int64(insert_dispatch, 1, static_cast<int64_t>(first));
      sqlite3_bind_int64(insert_dispatch, 2, static_cast<int64_t>(next));
      sqlite3_bind_text(insert_dispatch, 3, log.data(), static_cast<int>(log.size()),
                        SQLITE_STATIC);
      Step(db, insert_dispatch);
    }
    Step(db, commit);
    ++commits;
    for (Worker& w : workers) {
      for (std::string* out : {&w.ack, &w.dispatch}) {
        if (out->size() == 1) continue;
        router.send(zmq::buffer(w.identity), zmq::send_flags::sndmore);
        router.send(zmq::buffer(*out), zmq::send_flags::none);
        out->resize(1);
      }
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (Worker& w : workers) {
    router.send(zmq::buffer(w.identity), zmq::send_flags::sndmore);
    router.send(zmq::message_t(), zmq::send_flags::none);
  }
  int failed = 0;
  for (pid_t pid : pids) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      failed = 1;
    }
  }
  for (sqlite3_stmt* st :
       {begin, commit, insert_attempt, insert_dispatch, delete_dispatch}) {
    sqlite3_finalize(st);
  }
  checkpointer->reset();
  sqlite3_close(db);
  if (failed) Fail("a worker did not end cleanly");
  std::printf(
      "{\"tasks\": %llu, \"seconds\": %.4f, \"tasks_per_s\": %.1f, \"commits\": %llu}\n",
      static_cast<unsigned long long>(tasks), seconds,
      static_cast<double>(tasks) / seconds, static_cast<unsigned long long>(commits));
  return 0;
}

int Usage() {
  std::fprintf(stderr, "usage: dispatch_floor --tasks N [--slots 32] --state-dir DIR\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--worker") == 0) return RunWorker(argv[2]);
  uint64_t tasks = 0;
  uint32_t slots = 32;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--tasks") {
      tasks = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (flag == "--slots") {
      slots = static_cast<uint32_t>(std::strtoul(argv[i + 1], nullptr, 10));
    } else if (flag == "--state-dir") {
      dir = argv[i + 1];
    } else {
      return Usage();
    }
  }
  if (argc % 2 == 0 || tasks == 0 || slots == 0 || dir.empty()) return Usage();
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) Fail("readlink /proc/self/exe");
  self[n] = '\0';
  return RunCoordinator(self, tasks, slots, dir);
}
