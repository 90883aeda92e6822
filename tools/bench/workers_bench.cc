// workers_bench: many simulated workers in one process against one
// coordinator (issue 13, "workers"). Each is a DEALER connection of its own
// (ZMTP 3.0 spoken directly, tools/bench/zmtp_dealer.h: to the
// coordinator's ROUTER a DEALER like a worker's, at a fraction of libzmq's
// CPU a message in the load generator), registered with HELLO like a real
// worker (docs/protocol.md, "Worker dialog"), offering SLOTS slots of the
// threads backend and, like `drover worker`, PREFETCH attempts beyond them
// (default 4 x SLOTS; 0: none); each answers every DISPATCH at once with a
// RESULT of reason `ok` (so the coordinator alone is measured: zero-length
// tasks, which a real worker would also end and report in one turn) and
// heartbeats every HEARTBEAT_MS as the protocol asks.
//
//   workers_bench --connect ENDPOINT [--workers 1000] [--slots 1]
//                 [--prefetch 4xSLOTS] [--heartbeat-ms 1000] [--seconds 900]
//                 [--ready-file F]
//
// It writes READY-FILE once every worker has its WELCOME, runs until
// SIGTERM, SIGINT or --seconds, and then prints one line of counts:
//
//   workers=1000 registered=1000 attempts=20000 results=20000 acked=20000
//   disconnects=0 reregistered=0 unknown=0 broken=0 max_silence_ms=812
//
// Most of the rest say whether the coordinator ever took a live worker for
// dead: a DISCONNECT ("not registered: send HELLO") or a second WELCOME
// means it had dropped the registration, `unknown` counts attempts it no
// longer wanted, and `broken` connections the coordinator closed or broke
// (each is named on stderr). max_silence_ms is the longest time any worker went
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
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/protocol/codec.h"
#include "core/protocol/drover.pb.h"
#include "tools/bench/zmtp_dealer.h"

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
  // Attempts a worker takes beyond its slots (Hello.prefetch); -1: 4 x
  // slots, what `drover worker` asks for unless told otherwise.
  int prefetch = -1;
  int heartbeat_ms = 1000;
  int seconds = 900;
  std::string ready_file;
};

struct Counts {
  uint64_t registered = 0, attempts = 0, results = 0, acked = 0;
  uint64_t disconnects = 0, reregistered = 0, unknown = 0, broken = 0;
  int64_t max_silence_ms = 0;
};

struct FakeWorker {
  bench::ZmtpDealer connection;
  bool watching_writes = false;  // EPOLLOUT is in its epoll interest
  bool dropped = false;          // its connection broke
  std::string name;
  std::string session;
  bool registered = false;
  int welcomes = 0;
  uint32_t batch = 1;                // the coordinator's Welcome.max_batch
  std::set<uint64_t> unacked;        // results sent, not yet ACKed
  Clock::time_point last_heard{};    // the last message from the coordinator
};

// Queues `m` on `w`'s connection as DWP frames (docs/protocol.md,
// "Message format"): header, command, body, payloads.
void Send(FakeWorker& w, const Message& m) {
  static const std::string header =
      std::string(protocol::kHeaderPrefix) + static_cast<char>(protocol::kVersion);
  const char command = static_cast<char>(m.command);
  std::vector<std::string_view> frames = {header, std::string_view(&command, 1), m.body};
  for (const std::string& p : m.payloads) frames.push_back(p);
  w.connection.Send(frames);
}

// The DWP message of a ZMTP message's frames; nothing when it is not one.
std::optional<Message> Decode(std::vector<std::string>& frames) {
  if (frames.size() < 3 || frames[0].size() != protocol::kHeaderPrefix.size() + 1 ||
      frames[0].compare(0, protocol::kHeaderPrefix.size(), protocol::kHeaderPrefix) !=
          0 ||
      frames[1].size() != 1) {
    return std::nullopt;
  }
  Message m;
  m.command = static_cast<Command>(frames[1][0]);
  m.body = std::move(frames[2]);
  return m;
}

void Hello(FakeWorker& w, const Options& o) {
  wire::Hello hello;
  hello.set_name(w.name);
  hello.set_hostname("workers-bench");
  hello.set_pid(static_cast<uint32_t>(::getpid()));
  hello.set_session(w.session);
  hello.set_version("workers-bench");
  (*hello.mutable_slots())["threads"] = o.slots;
  const uint32_t prefetch =
      o.prefetch < 0 ? 4 * o.slots : static_cast<uint32_t>(o.prefetch);
  if (prefetch > 0) (*hello.mutable_prefetch())["threads"] = prefetch;
  hello.set_heartbeat_ms(static_cast<uint32_t>(o.heartbeat_ms));
  hello.set_max_batch(256);
  hello.set_takes_dispatch_acks(true);  // as drover's worker does
  for (uint64_t id : w.unacked) hello.add_running(id);
  Send(w, protocol::Make(Command::kHello, hello));
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
    Send(w, m);
    counts.results += end - i;
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
  std::string host;
  uint16_t port = 0;
  if (!bench::ParseTcpEndpoint(o.connect, &host, &port)) {
    std::fprintf(stderr, "workers_bench: --connect must be tcp://IPV4:PORT, not %s\n",
                 o.connect.c_str());
    return 2;
  }
  // A connection is a descriptor here and at the coordinator: 1,000
  // workers need more than the common soft limit of 1,024.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    std::perror("workers_bench: epoll_create1");
    return 1;
  }
  // One epoll set of every connection (token: its index), level-triggered:
  // a connection is read until it has nothing, written until the socket
  // takes no more, and watched for writing only while bytes wait.
  std::vector<FakeWorker> workers(static_cast<size_t>(o.workers));
  auto watch = [&](size_t i, bool writes, int op) {
    epoll_event ev{};
    ev.events = writes ? EPOLLIN | EPOLLOUT : EPOLLIN;
    ev.data.u64 = i;
    workers[i].watching_writes = writes;
    return ::epoll_ctl(epfd, op, workers[i].connection.fd(), &ev) == 0;
  };
  char session[32];
  for (size_t i = 0; i < workers.size(); ++i) {
    FakeWorker& w = workers[i];
    w.name = "sim-" + std::to_string(i);
    std::snprintf(session, sizeof session, "%08x%08zx", static_cast<unsigned>(::getpid()),
                  i);
    w.session = session;
    if (!w.connection.Connect(host, port) || !watch(i, true, EPOLL_CTL_ADD)) {
      std::fprintf(
          stderr, "workers_bench: %s: %s\n", w.name.c_str(),
          w.connection.failed() ? w.connection.error().c_str() : std::strerror(errno));
      return 1;
    }
    Hello(w, o);  // queued behind the greeting; sent once connected
  }

  Counts counts;
  std::vector<size_t> written;  // connections with bytes queued this turn
  // A broken connection is counted, named and dropped from the set.
  auto drop = [&](size_t i) {
    FakeWorker& w = workers[i];
    if (w.dropped) return;
    w.dropped = true;
    ++counts.broken;
    if (w.registered) --counts.registered;
    w.registered = false;
    std::fprintf(stderr, "workers_bench: %s: %s\n", w.name.c_str(),
                 w.connection.error().c_str());
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, w.connection.fd(), nullptr);
  };
  // Sends what `w` has queued, as far as its socket takes it.
  auto flush = [&](size_t i) {
    FakeWorker& w = workers[i];
    if (w.dropped) return;
    if (!w.connection.Flush()) return drop(i);
    if (w.connection.wants_write() != w.watching_writes) {
      watch(i, w.connection.wants_write(), EPOLL_CTL_MOD);
    }
  };

  bool ready_written = o.ready_file.empty();
  const auto interval = std::chrono::milliseconds(o.heartbeat_ms);
  const auto end = Clock::now() + std::chrono::seconds(o.seconds);
  auto next_beat = Clock::now() + interval;
  const Message beat = protocol::Make(Command::kHeartbeat, wire::Heartbeat());
  std::vector<epoll_event> events(256);
  std::vector<std::vector<std::string>> messages;
  while (!g_stop && Clock::now() < end) {
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(Clock::duration::zero(), std::min(next_beat, end) - Clock::now()));
    const int timeout = static_cast<int>(std::min<int64_t>(wait.count(), 100));
    const int n =
        ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) {
      std::perror("workers_bench: epoll_wait");
      return 1;
    }
    const auto now = Clock::now();
    written.clear();
    for (int k = 0; k < n; ++k) {
      const size_t i = static_cast<size_t>(events[k].data.u64);
      FakeWorker& w = workers[i];
      if (w.dropped) continue;
      written.push_back(i);
      if (!(events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      messages.clear();
      const bool open = w.connection.Read(&messages);
      for (std::vector<std::string>& frames : messages) {
        std::optional<Message> m = Decode(frames);
        if (!m) continue;
        if (w.registered && w.last_heard != Clock::time_point{}) {
          counts.max_silence_ms = std::max<int64_t>(
              counts.max_silence_ms,
              std::chrono::duration_cast<std::chrono::milliseconds>(now - w.last_heard)
                  .count());
        }
        w.last_heard = now;
        Handle(w, *m, o, counts);
      }
      if (!open) drop(i);
    }
    if (!ready_written && counts.registered == workers.size()) {
      std::ofstream(o.ready_file) << "ready\n";
      ready_written = true;
    }
    if (now >= next_beat) {
      for (size_t i = 0; i < workers.size(); ++i) {
        if (!workers[i].registered) continue;
        Send(workers[i], beat);
        written.push_back(i);
      }
      next_beat = now + interval;
    }
    for (size_t i : written) flush(i);
  }
  std::printf(
      "workers=%d registered=%llu attempts=%llu results=%llu acked=%llu "
      "disconnects=%llu reregistered=%llu unknown=%llu broken=%llu "
      "max_silence_ms=%lld\n",
      o.workers, static_cast<unsigned long long>(counts.registered),
      static_cast<unsigned long long>(counts.attempts),
      static_cast<unsigned long long>(counts.results),
      static_cast<unsigned long long>(counts.acked),
      static_cast<unsigned long long>(counts.disconnects),
      static_cast<unsigned long long>(counts.reregistered),
      static_cast<unsigned long long>(counts.unknown),
      static_cast<unsigned long long>(counts.broken),
      static_cast<long long>(counts.max_silence_ms));
  std::fflush(stdout);
  // Leaving cleanly: a DISCONNECT each (drained: every attempt answered),
  // written before the connections close.
  wire::Disconnect bye;
  bye.set_drained(true);
  for (size_t i = 0; i < workers.size(); ++i) {
    if (!workers[i].registered) continue;
    Send(workers[i], protocol::Make(Command::kDisconnect, bye));
    flush(i);
  }
  ::close(epfd);
  return 0;
}

int Usage() {
  std::fprintf(stderr,
               "usage: workers_bench --connect ENDPOINT [--workers N] [--slots S] "
               "[--prefetch P] [--heartbeat-ms MS] [--seconds N] [--ready-file F]\n");
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
    } else if (arg == "--prefetch") {
      o.prefetch = std::atoi(value);
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
  if (o.connect.empty() || o.workers < 1 || o.slots < 1 || o.prefetch < -1 ||
      o.heartbeat_ms < 10 || o.seconds < 1) {
    return drover::Usage();
  }
  ::signal(SIGTERM, drover::OnSignal);
  ::signal(SIGINT, drover::OnSignal);
  return drover::Run(o);
}
