// workers_bench: many simulated workers in one process against one
// coordinator (issue 13, "workers"). Each is a DEALER socket of its own,
// registered with HELLO like a real worker (docs/protocol.md, "Worker
// dialog"), offering SLOTS slots of the threads backend; each answers every
// DISPATCH at once with a RESULT of reason `ok` (so the coordinator alone
// is measured) and heartbeats every HEARTBEAT_MS as the protocol asks.
//
//   workers_bench --connect ENDPOINT [--workers 1000] [--slots 1]
//                 [--heartbeat-ms 1000] [--seconds 900] [--ready-file F]
//
// It writes READY-FILE once every worker has its WELCOME, runs until
// SIGTERM, SIGINT or --seconds, and then prints one line of counts:
//
//   workers=1000 registered=1000 attempts=20000 results=20000 acked=20000
//   disconnects=0 reregistered=0 unknown=0 max_silence_ms=812
//
// The last four say whether the coordinator ever took a live worker for
// dead: a DISCONNECT ("not registered: send HELLO") or a second WELCOME
// means it had dropped the registration, and `unknown` counts attempts it
// no longer wanted. max_silence_ms is the longest time any worker went
// without a message from the coordinator once registered (its heartbeats
// included): the coordinator's own liveness as the workers see it.
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "core/protocol/codec.h"
#include "core/protocol/drover.pb.h"

namespace drover {
namespace {

using Clock = std::chrono::steady_clock;
using protocol::Command;
using protocol::Message;

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct Options {
  std::string connect;
  int workers = 1000;
  uint32_t slots = 1;
  int heartbeat_ms = 1000;
  int seconds = 900;
  std::string ready_file;
};

struct Counts {
  uint64_t registered = 0, attempts = 0, results = 0, acked = 0;
  uint64_t disconnects = 0, reregistered = 0, unknown = 0;
  int64_t max_silence_ms = 0;
};

struct FakeWorker {
  zmq::socket_t socket;
  std::string name;
  std::string session;
  bool registered = false;
  int welcomes = 0;
  uint32_t batch = 1;                // the coordinator's Welcome.max_batch
  std::set<uint64_t> unacked;        // results sent, not yet ACKed
  Clock::time_point last_heard{};    // the last message from the coordinator
};

void Hello(FakeWorker& w, const Options& o) {
  wire::Hello hello;
  hello.set_name(w.name);
  hello.set_hostname("workers-bench");
  hello.set_pid(static_cast<uint32_t>(::getpid()));
  hello.set_session(w.session);
  hello.set_version("workers-bench");
  (*hello.mutable_slots())["threads"] = o.slots;
  hello.set_heartbeat_ms(static_cast<uint32_t>(o.heartbeat_ms));
  hello.set_max_batch(256);
  hello.set_takes_dispatch_acks(true);  // as drover's worker does
  for (uint64_t id : w.unacked) hello.add_running(id);
  (void)protocol::Send(w.socket, protocol::Make(Command::kHello, hello));
}

wire::Result OkResult(const FakeWorker& w, uint64_t attempt_id) {
  wire::Result r;
  r.set_attempt_id(attempt_id);
  r.set_reason("ok");
  r.set_exit_code(0);
  r.set_worker(w.name);
  r.set_result_json("null");
  return r;
}

// One RESULT for the attempts of one DISPATCH (a batch when the
// coordinator takes them), with the two empty output frames of the head.
void Answer(FakeWorker& w, const std::vector<uint64_t>& ids, Counts& counts) {
  for (size_t i = 0; i < ids.size(); i += w.batch) {
    const size_t end = std::min(ids.size(), i + w.batch);
    wire::Result head = OkResult(w, ids[i]);
    for (size_t j = i + 1; j < end; ++j) *head.add_more() = OkResult(w, ids[j]);
    Message m = protocol::Make(Command::kResult, head);
    m.payloads = {std::string(), std::string()};
    if (protocol::Send(w.socket, m).ok()) counts.results += end - i;
    for (size_t j = i; j < end; ++j) w.unacked.insert(ids[j]);
  }
}

void Handle(FakeWorker& w, const Message& m, const Options& o, Counts& counts) {
  switch (m.command) {
    case Command::kWelcome: {
      auto welcome = protocol::Parse<wire::Welcome>(m);
      if (!welcome.ok()) return;
      if (++w.welcomes > 1) ++counts.reregistered;
      if (!w.registered) ++counts.registered;
      w.registered = true;
      w.batch = std::clamp<uint32_t>(welcome->max_batch(), 1, 256);
      for (uint64_t id : welcome->unknown()) {
        ++counts.unknown;
        w.unacked.erase(id);
      }
      // As a worker must: every unACKed RESULT goes again.
      Answer(w, std::vector<uint64_t>(w.unacked.begin(), w.unacked.end()), counts);
      return;
    }
    case Command::kDispatch: {
      auto dispatch = protocol::Parse<wire::Dispatch>(m);
      if (!dispatch.ok()) return;
      for (uint64_t id : dispatch->acks()) counts.acked += w.unacked.erase(id);
      std::vector<uint64_t> ids{dispatch->attempt_id()};
      for (const auto& more : dispatch->more()) ids.push_back(more.attempt_id());
      counts.attempts += ids.size();
      Answer(w, ids, counts);
      return;
    }
    case Command::kAck: {
      auto ack = protocol::Parse<wire::Ack>(m);
      if (!ack.ok()) return;
      for (uint64_t id : ack->attempt_ids()) counts.acked += w.unacked.erase(id);
      return;
    }
    case Command::kDisconnect:
      // The coordinator no longer knows this worker: it was taken for dead.
      ++counts.disconnects;
      if (w.registered) --counts.registered;
      w.registered = false;
      Hello(w, o);
      return;
    default:
      return;  // HEARTBEAT, JOB-DONE, ...: liveness only
  }
}

int Run(const Options& o) {
  // A socket is a descriptor here and a connection at the coordinator:
  // 1,000 workers need more than the common soft limit of 1,024.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  zmq::context_t context(1);
  context.set(zmq::ctxopt::max_sockets, o.workers + 16);
  std::vector<FakeWorker> workers(static_cast<size_t>(o.workers));
  char session[32];
  for (size_t i = 0; i < workers.size(); ++i) {
    FakeWorker& w = workers[i];
    w.socket = zmq::socket_t(context, zmq::socket_type::dealer);
    w.socket.set(zmq::sockopt::linger, 0);
    w.socket.connect(o.connect);
    w.name = "sim-" + std::to_string(i);
    std::snprintf(session, sizeof session, "%08x%08zx", static_cast<unsigned>(::getpid()), i);
    w.session = session;
    Hello(w, o);
  }
  // The wait is O(sockets ready), not O(sockets): an epoll set of every
  // socket's ZMQ_FD (token: its index). A ZMQ_FD only says "look again":
  // a socket is drained until it has nothing, and one whose drain stopped
  // at the bound is drained again before the next wait. With zmq_poll of
  // 1,000 sockets each wait looked at all of them, and the simulator took
  // as much CPU as the coordinator it measures, on the same cores.
  const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    std::perror("workers_bench: epoll_create1");
    return 1;
  }
  for (size_t i = 0; i < workers.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    const int fd = workers[i].socket.get(zmq::sockopt::fd);
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      std::perror("workers_bench: epoll_ctl");
      return 1;
    }
  }

  Counts counts;
  bool ready_written = o.ready_file.empty();
  const auto interval = std::chrono::milliseconds(o.heartbeat_ms);
  const auto end = Clock::now() + std::chrono::seconds(o.seconds);
  auto next_beat = Clock::now() + interval;
  const Message beat = protocol::Make(Command::kHeartbeat, wire::Heartbeat());
  // Sockets to drain without waiting: every one at the start (their HELLO
  // went out before the epoll set existed) and after each heartbeat round
  // (a send may take the signal of a message that arrived meanwhile).
  std::vector<size_t> again(workers.size());
  for (size_t i = 0; i < again.size(); ++i) again[i] = i;
  std::vector<epoll_event> events(256);
  std::vector<size_t> ready;
  while (!g_stop && Clock::now() < end) {
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(Clock::duration::zero(), std::min(next_beat, end) - Clock::now()));
    const int timeout =
        again.empty() ? static_cast<int>(std::min<int64_t>(wait.count(), 100)) : 0;
    const int n =
        ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) {
      std::perror("workers_bench: epoll_wait");
      return 1;
    }
    ready.swap(again);
    again.clear();
    for (int k = 0; k < n; ++k) ready.push_back(static_cast<size_t>(events[k].data.u64));
    const auto now = Clock::now();
    for (size_t i : ready) {
      FakeWorker& w = workers[i];
      // Bounded: at most a few hundred messages a turn for one socket.
      int taken = 0;
      for (; taken < 512; ++taken) {
        auto received = protocol::Receive(w.socket, /*router=*/false);
        if (!received) break;
        if (!received->ok()) continue;
        if (w.registered && w.last_heard != Clock::time_point{}) {
          counts.max_silence_ms = std::max<int64_t>(
              counts.max_silence_ms,
              std::chrono::duration_cast<std::chrono::milliseconds>(now - w.last_heard)
                  .count());
        }
        w.last_heard = now;
        Handle(w, received->value(), o, counts);
      }
      if (taken == 512) again.push_back(i);
    }
    if (!ready_written && counts.registered == workers.size()) {
      std::ofstream(o.ready_file) << "ready\n";
      ready_written = true;
    }
    if (now >= next_beat) {
      for (size_t i = 0; i < workers.size(); ++i) {
        if (workers[i].registered) (void)protocol::Send(workers[i].socket, beat);
        again.push_back(i);
      }
      next_beat = now + interval;
    }
  }
  ::close(epfd);
  std::printf("workers=%d registered=%llu attempts=%llu results=%llu acked=%llu "
              "disconnects=%llu reregistered=%llu unknown=%llu max_silence_ms=%lld\n",
              o.workers, static_cast<unsigned long long>(counts.registered),
              static_cast<unsigned long long>(counts.attempts),
              static_cast<unsigned long long>(counts.results),
              static_cast<unsigned long long>(counts.acked),
              static_cast<unsigned long long>(counts.disconnects),
              static_cast<unsigned long long>(counts.reregistered),
              static_cast<unsigned long long>(counts.unknown),
              static_cast<long long>(counts.max_silence_ms));
  // Leaving cleanly: a DISCONNECT each (drained: every attempt answered).
  wire::Disconnect bye;
  bye.set_drained(true);
  for (FakeWorker& w : workers) {
    if (w.registered) (void)protocol::Send(w.socket, protocol::Make(Command::kDisconnect, bye));
  }
  return 0;
}

int Usage() {
  std::fprintf(stderr,
               "usage: workers_bench --connect ENDPOINT [--workers N] [--slots S] "
               "[--heartbeat-ms MS] [--seconds N] [--ready-file F]\n");
  return 2;
}

}  // namespace
}  // namespace drover

int main(int argc, char** argv) {
  drover::Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return drover::Usage();
    const char* value = argv[++i];
    if (arg == "--connect") {
      o.connect = value;
    } else if (arg == "--workers") {
      o.workers = std::atoi(value);
    } else if (arg == "--slots") {
      o.slots = static_cast<uint32_t>(std::atoi(value));
    } else if (arg == "--heartbeat-ms") {
      o.heartbeat_ms = std::atoi(value);
    } else if (arg == "--seconds") {
      o.seconds = std::atoi(value);
    } else if (arg == "--ready-file") {
      o.ready_file = value;
    } else {
      return drover::Usage();
    }
  }
  if (o.connect.empty() || o.workers < 1 || o.slots < 1 || o.heartbeat_ms < 10 ||
      o.seconds < 1) {
    return drover::Usage();
  }
  ::signal(SIGTERM, drover::OnSignal);
  ::signal(SIGINT, drover::OnSignal);
  return drover::Run(o);
}
