// ipc_bench: the fork backend's message path against Node's own fork.
//
//   round trips  a small message through a pool of one process, closed loop
//                (the next attempt is submitted from the OnFinished of the
//                previous one, so only the backend's own path is measured):
//                  cow    drover's C++ cow child running `noop`, the
//                         backend driven by this thread as the worker
//                         drives it (BackendConfig::driven)
//                  cow-thread  the same with the backend's own reactor
//                         thread (each next attempt is submitted from it,
//                         so no round trip crosses threads)
//                  node   configs/examples/fork_sort.js under drover
//                         (driven)
//                  peer   Node's own fork parent and the same child
//                         (tools/bench/node_fork_peer.js)
//                  raw    a blocking write/read ping-pong over a socketpair
//                         with a forked C++ echo child: no runner at all,
//                         the ceiling of this machine
//                  epoll  the same echo child, the reply awaited in
//                         epoll_wait and read from a non-blocking socket:
//                         what any event loop pays (drover's reactor,
//                         Node's), the floor of a reactor's design
//   sort         1,000,000 random integers sorted in a pool process and
//                returned (Submit to OnFinished, the message already JSON):
//                  cow    the built-in `sort` in a cow child
//                  node   fork_sort.js under drover
//                  peer   Node's own fork example (send to 'message')
//
// After the table, one machine-readable line per runner and figure for
// tools/bench/bench (which writes them to its JSON file):
//   figure RUNNER METRIC VALUE_RUN1 VALUE_RUN2 ...
// RUNNER is raw, epoll, cow, cow-thread, node (node child under drover) or
// peer; METRIC is round_trips_per_s, p50_us, cpu_us_per_rt or sort_ms.
//
// "cpu here" is the CPU time of the measuring process (all its threads) per
// round trip: the runner's own cost, which unlike the rate does not depend
// on how busy the machine is. Prints each figure's median over --runs runs
// and the ratios issue 13 sets targets for (cow round trips >= 0.8x the raw
// ping-pong with a p50 within 2x of it; cow sort >= 10x faster than the
// peer). Asserts nothing: timings are never tests.
//
//   ipc_bench [--round-trips N] [--sort-size M] [--runs R] [--skip-node]
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backends/fork/fork_backend.h"
#include "backends/process/adaptive_spin.h"
#include "backends/fork/json_scan.h"
#include "backends/fork/zygote.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const fs::path kSource = DROVER_SOURCE_DIR;

struct Options {
  int round_trips = 20000;
  int sort_size = 1000000;
  int runs = 3;
  bool node = true;
};

// CPU time of this whole process (every thread), in microseconds.
double ProcessCpuUs() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Drives a backend in a closed loop: each OnFinished submits the next
// attempt, on the reactor thread, until `count` have finished. A driven
// backend's reactor is the calling thread, as the worker's loop is.
class ClosedLoop : public BackendEvents {
 public:
  ClosedLoop(Backend* backend, TaskAttempt attempt)
      : backend_(backend), template_(attempt) {}

  // Runs `count` attempts; returns the wall time, fills per-attempt
  // latencies (microseconds). Empty on a failed attempt.
  std::optional<double> Run(int count, std::vector<double>* latencies) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      remaining_ = count;
      done_ = false;
      latencies_.clear();
      latencies_.reserve(static_cast<size_t>(count));
    }
    const Clock::time_point start = Clock::now();
    SubmitNext();
    if (backend_->PollFd() >= 0 && !Drive(start + std::chrono::minutes(10))) {
      std::fprintf(stderr, "ipc_bench: timed out\n");
      return std::nullopt;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::minutes(10), [&] { return done_; })) {
      std::fprintf(stderr, "ipc_bench: timed out\n");
      return std::nullopt;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (!error_.empty()) {
      std::fprintf(stderr, "ipc_bench: attempt failed: %s\n", error_.c_str());
      return std::nullopt;
    }
    *latencies = latencies_;
    return seconds;
  }

  const std::string& last_result() const { return last_result_; }

  void OnStarted(uint64_t, int) override {}
  void OnFinished(uint64_t, AttemptOutcome outcome) override {
    const Clock::time_point now = Clock::now();
    bool more = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      latencies_.push_back(
          std::chrono::duration<double, std::micro>(now - sent_).count());
      if (!outcome.ok()) error_ = outcome.Describe();
      more = error_.empty() && --remaining_ > 0;
      if (!more) {
        last_result_ = std::move(outcome.result_json);
        done_ = true;
        cv_.notify_all();
      }
    }
    if (more) SubmitNext();
  }

 private:
  // The worker's loop, for a driven backend: waits on its descriptor and
  // runs its turns until the closed loop is done. False past `give_up`.
  bool Drive(Clock::time_point give_up) {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (done_) return true;
      }
      if (Clock::now() > give_up) return false;
      pollfd p{backend_->PollFd(), POLLIN, 0};
      // As the worker does (Worker::Loop::WaitForTurn): a reply expected
      // within microseconds is looked for before the wait blocks.
      std::chrono::nanoseconds spin = backend_->SpinBeforeWait();
      if (const int ms = backend_->PollTimeoutMs(); ms >= 0) {
        spin = std::min<std::chrono::nanoseconds>(spin, std::chrono::milliseconds(ms));
      }
      // A reply in shared memory shows as PollTimeoutMs() 0, not on the
      // descriptor.
      backend_->Spinning(true);
      const bool ready = SpinUntil(
          spin, [&] { return backend_->PollTimeoutMs() == 0 || ::poll(&p, 1, 0) != 0; });
      backend_->Spinning(false);
      if (!ready) ::poll(&p, 1, backend_->PollTimeoutMs());
      // As the worker does: a turn only for what is ready or due.
      if ((p.revents & POLLIN) || backend_->PollTimeoutMs() == 0) backend_->Poll();
    }
  }

  void SubmitNext() {
    TaskAttempt attempt = template_;
    attempt.attempt_id = next_id_++;
    sent_ = Clock::now();
    Status s = backend_->Submit(std::move(attempt));
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = s.ToString();
      done_ = true;
      cv_.notify_all();
    }
  }

  Backend* backend_;
  const TaskAttempt template_;
  uint64_t next_id_ = 1;
  Clock::time_point sent_;  // written before Submit, read in OnFinished
  std::mutex mu_;
  std::condition_variable cv_;
  int remaining_ = 0;
  bool done_ = false;
  std::string error_;
  std::string last_result_;
  std::vector<double> latencies_;
};

struct Figures {
  std::vector<double> rate;  // round trips per second, per run
  std::vector<double> p50;   // microseconds, per run
  std::vector<double> cpu;   // CPU microseconds of this process per round trip
  std::vector<double> ms;    // sort wall time, per run
};

TaskAttempt CowAttempt(const std::string& fn, const std::string& args) {
  PoolSpec pool;
  pool.name = "bench-cow";
  pool.mode = "cow";
  TaskAttempt attempt;
  attempt.payload = ForkCallPayload(pool, fn, args);
  return attempt;
}

TaskAttempt NodeAttempt(const std::string& message) {
  PoolSpec pool;
  pool.name = "bench-node";
  pool.command = {"node", (kSource / "configs/examples/fork_sort.js").string()};
  TaskAttempt attempt;
  attempt.payload = ForkMessagePayload(pool, message);
  return attempt;
}

// One pool of one process behind its own backend, driven in a closed loop.
class PoolRunner {
 public:
  // Starts the backend and runs `warm_up` attempts (which also start the
  // pool's process). Null on failure.
  // `driven`: run by the measuring thread, as the worker runs it.
  static std::unique_ptr<PoolRunner> Create(const std::shared_ptr<Zygote>& zygote,
                                            const TaskAttempt& attempt, int warm_up,
                                            bool driven = true) {
    BackendConfig config;
    config.slots = 1;
    config.zygote = zygote;
    config.driven = driven;
    auto runner = std::unique_ptr<PoolRunner>(new PoolRunner(config, attempt));
    std::vector<double> latencies;
    if (!runner->backend_.Start(&runner->loop_).ok() ||
        !runner->loop_.Run(warm_up, &latencies)) {
      return nullptr;
    }
    return runner;
  }
  ~PoolRunner() { backend_.Shutdown(std::chrono::seconds(5)); }

  // One run of `n` round trips, appended to `f`.
  bool RoundTrips(int n, Figures* f) {
    std::vector<double> latencies;
    const double cpu = ProcessCpuUs();
    std::optional<double> seconds = loop_.Run(n, &latencies);
    if (!seconds) return false;
    f->cpu.push_back((ProcessCpuUs() - cpu) / n);
    f->rate.push_back(n / *seconds);
    f->p50.push_back(Median(latencies));
    return true;
  }

  // One sort, checked (outside the timing) to return `expected` numbers in
  // order, appended to `f`.
  bool Sort(int expected, Figures* f) {
    std::vector<double> latencies;
    if (!loop_.Run(1, &latencies)) return false;
    f->ms.push_back(latencies[0] / 1000);
    std::optional<std::vector<int64_t>> sorted = ParseIntArray(loop_.last_result());
    if (!sorted || sorted->size() != static_cast<size_t>(expected) ||
        !std::is_sorted(sorted->begin(), sorted->end())) {
      std::fprintf(stderr, "ipc_bench: the sort result is wrong\n");
      return false;
    }
    return true;
  }

 private:
  PoolRunner(const BackendConfig& config, const TaskAttempt& attempt)
      : backend_(config), loop_(&backend_, attempt) {}

  ForkBackend backend_;
  ClosedLoop loop_;
};

// Runs the Node peer; returns its JSON line.
std::optional<nlohmann::json> NodePeer(const std::string& args) {
  const std::string command =
      "node " + (kSource / "tools/bench/node_fork_peer.js").string() + " " + args;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  if (::pclose(pipe) != 0) return std::nullopt;
  nlohmann::json line = nlohmann::json::parse(out, nullptr, false);
  if (line.is_discarded()) return std::nullopt;
  return line;
}

// The ceiling: blocking round trips of "[3,1,2]\n" with a forked C++ echo
// child over a socketpair. With `reactor`, the reply is awaited in
// epoll_wait and read from the socket made non-blocking, as an event loop
// does. Start() must run while the process has a single thread; the runs
// may come later.
class RawEcho {
 public:
  explicit RawEcho(bool reactor = false) : reactor_(reactor) {}
  ~RawEcho() {
    if (epoll_ >= 0) ::close(epoll_);
    if (pid_ <= 0) return;
    ::close(fd_);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }

  bool Start() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      ::close(sv[0]);
      char buffer[256];
      while (true) {
        ssize_t n = ::read(sv[1], buffer, sizeof buffer);
        if (n <= 0 || ::write(sv[1], buffer, static_cast<size_t>(n)) != n) _exit(0);
      }
    }
    ::close(sv[1]);
    fd_ = sv[0];
    if (reactor_) {
      epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
      epoll_event ev{};
      ev.events = EPOLLIN;
      if (epoll_ < 0 || ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK) != 0 ||
          ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd_, &ev) != 0) {
        return false;
      }
    }
    bool ok = true;
    for (int i = 0; i < 1000 && ok; ++i) ok = Trip();  // warm-up
    return ok;
  }

  bool RoundTrips(int n, Figures* f) {
    std::vector<double> latencies(static_cast<size_t>(n));
    const double cpu = ProcessCpuUs();
    const Clock::time_point start = Clock::now();
    for (int i = 0; i < n; ++i) {
      const Clock::time_point sent = Clock::now();
      if (!Trip()) return false;
      latencies[static_cast<size_t>(i)] =
          std::chrono::duration<double, std::micro>(Clock::now() - sent).count();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    f->cpu.push_back((ProcessCpuUs() - cpu) / n);
    f->rate.push_back(n / seconds);
    f->p50.push_back(Median(latencies));
    return true;
  }

 private:
  bool Trip() {
    static constexpr char kMessage[] = "[3,1,2]\n";
    char buffer[256];
    if (::write(fd_, kMessage, sizeof kMessage - 1) != sizeof kMessage - 1) return false;
    if (!reactor_) return ::read(fd_, buffer, sizeof buffer) > 0;
    while (true) {
      epoll_event ev;
      const int n = ::epoll_wait(epoll_, &ev, 1, -1);
      if (n < 0 && errno != EINTR) return false;
      if (n <= 0) continue;
      const ssize_t r = ::read(fd_, buffer, sizeof buffer);
      if (r > 0) return true;
      if (r == 0 || errno != EAGAIN) return false;
    }
  }

  const bool reactor_;
  pid_t pid_ = -1;
  int fd_ = -1;
  int epoll_ = -1;
};

void Row(const char* what, const Figures& f) {
  if (!f.rate.empty() && !f.cpu.empty()) {
    std::printf("  %-34s %10.0f round trips/s   p50 %6.1f us   cpu here %5.1f us/rt\n",
                what, Median(f.rate), Median(f.p50), Median(f.cpu));
  } else if (!f.rate.empty()) {
    std::printf("  %-34s %10.0f round trips/s   p50 %6.1f us\n", what, Median(f.rate),
                Median(f.p50));
  } else {
    std::printf("  %-34s %10.1f ms\n", what, Median(f.ms));
  }
}

// "figure RUNNER METRIC V1 V2 ...", when there are values.
void FigureLine(const char* runner, const char* metric,
                const std::vector<double>& values) {
  if (values.empty()) return;
  std::printf("figure %s %s", runner, metric);
  for (double v : values) std::printf(" %.3f", v);
  std::printf("\n");
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> int { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--round-trips") {
      o.round_trips = next();
    } else if (a == "--sort-size") {
      o.sort_size = next();
    } else if (a == "--runs") {
      o.runs = next();
    } else if (a == "--skip-node") {
      o.node = false;
    } else {
      std::fprintf(stderr,
                   "usage: ipc_bench [--round-trips N] [--sort-size M] [--runs R] "
                   "[--skip-node]\n");
      return 2;
    }
  }
  if (o.round_trips < 1 || o.sort_size < 1 || o.runs < 1) {
    std::fprintf(stderr, "ipc_bench: counts must be positive\n");
    return 2;
  }
  // First, while this process has one thread: the raw echo child and the
  // zygote are plain forks.
  RawEcho raw;
  RawEcho raw_epoll(/*reactor=*/true);
  const bool raw_ok = raw.Start() && raw_epoll.Start();
  Result<std::shared_ptr<Zygote>> zygote = StartZygote();
  if (!zygote.ok()) {
    std::fprintf(stderr, "ipc_bench: %s\n", zygote.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "ipc_bench: %d round trips x %d runs, sort of %d numbers x %d runs "
      "(runners interleaved run by run; medians)\n",
      o.round_trips, o.runs, o.sort_size, o.runs);

  std::mt19937_64 rng(20261126);
  std::vector<int64_t> numbers(static_cast<size_t>(o.sort_size));
  for (int64_t& n : numbers) n = static_cast<int64_t>(rng() % 1000000000);
  std::string message;
  AppendIntArray(numbers, &message);
  const fs::path numbers_file =
      fs::temp_directory_path() /
      ("ipc_bench_numbers_" + std::to_string(::getpid()) + ".json");
  std::ofstream(numbers_file) << message;

  Figures rt_cow, rt_cow_thread, rt_node, rt_peer, rt_raw, rt_epoll, sort_cow, sort_node,
      sort_peer;
  bool ok = raw_ok;
  {
    auto cow = PoolRunner::Create(*zygote, CowAttempt("noop", "[3,1,2]"), 1000);
    auto cow_thread = PoolRunner::Create(*zygote, CowAttempt("noop", "[3,1,2]"), 1000,
                                         /*driven=*/false);
    auto node =
        o.node ? PoolRunner::Create(*zygote, NodeAttempt("[3,1,2]"), 1000) : nullptr;
    ok = ok && cow != nullptr && cow_thread != nullptr && (!o.node || node != nullptr);
    for (int run = 0; run < o.runs && ok; ++run) {
      ok = raw.RoundTrips(o.round_trips, &rt_raw) &&
           raw_epoll.RoundTrips(o.round_trips, &rt_epoll) &&
           cow->RoundTrips(o.round_trips, &rt_cow) &&
           cow_thread->RoundTrips(o.round_trips, &rt_cow_thread);
      if (ok && o.node) {
        ok = node->RoundTrips(o.round_trips, &rt_node);
        auto line = NodePeer("rt " + std::to_string(o.round_trips));
        ok = ok && line.has_value();
        if (ok) {
          rt_peer.rate.push_back((*line)["round_trips_per_s"].get<double>());
          rt_peer.p50.push_back((*line)["p50_us"].get<double>());
        }
      }
    }
  }
  std::printf("round trips of a small message, pool of 1 process:\n");
  if (!rt_raw.rate.empty()) Row("raw socketpair ping-pong (ceiling)", rt_raw);
  if (!rt_epoll.rate.empty()) Row("raw ping-pong through epoll", rt_epoll);
  if (!rt_cow.rate.empty()) Row("drover cow child (noop)", rt_cow);
  if (!rt_cow_thread.rate.empty()) Row("drover cow child, reactor thread", rt_cow_thread);
  if (!rt_node.rate.empty()) Row("drover + node fork_sort.js child", rt_node);
  if (!rt_peer.rate.empty()) Row("node fork parent + child (peer)", rt_peer);

  if (ok) {
    auto cow = PoolRunner::Create(*zygote, CowAttempt("sort", message), 1);
    auto node = o.node ? PoolRunner::Create(*zygote, NodeAttempt(message), 1) : nullptr;
    ok = cow != nullptr && (!o.node || node != nullptr);
    for (int run = 0; run < o.runs && ok; ++run) {
      ok = cow->Sort(o.sort_size, &sort_cow);
      if (ok && o.node) {
        ok = node->Sort(o.sort_size, &sort_node);
        auto line = NodePeer("sort " + numbers_file.string());
        ok = ok && line.has_value();
        if (ok) sort_peer.ms.push_back((*line)["ms"].get<double>());
      }
    }
  }
  std::printf("sort %d random integers in a pool process and get them back:\n",
              o.sort_size);
  if (!sort_cow.ms.empty()) Row("drover cow child (sort)", sort_cow);
  if (!sort_node.ms.empty()) Row("drover + node fork_sort.js child", sort_node);
  if (!sort_peer.ms.empty()) Row("node fork example (peer)", sort_peer);
  fs::remove(numbers_file);

  std::printf("ratios:\n");
  if (!rt_raw.rate.empty() && !rt_cow.rate.empty()) {
    std::printf("  cow round trips / raw:         %.2fx (target >= 0.8x)\n",
                Median(rt_cow.rate) / Median(rt_raw.rate));
    std::printf("  cow p50 / raw p50:             %.2fx (target <= 2x)\n",
                Median(rt_cow.p50) / Median(rt_raw.p50));
  }
  if (!rt_epoll.rate.empty() && !rt_cow.rate.empty()) {
    std::printf("  cow round trips / epoll:       %.2fx (drover's code over an event loop's floor)\n",
                Median(rt_cow.rate) / Median(rt_epoll.rate));
  }
  if (!rt_peer.rate.empty() && !rt_cow.rate.empty()) {
    std::printf("  cow round trips / node's own:  %.2fx\n",
                Median(rt_cow.rate) / Median(rt_peer.rate));
    if (!rt_raw.rate.empty()) {
      std::printf("  raw ping-pong / node's own:    %.2fx (the ceiling for the above)\n",
                  Median(rt_raw.rate) / Median(rt_peer.rate));
    }
    if (!rt_node.rate.empty()) {
      std::printf("  node child under drover / node's own: %.2fx\n",
                  Median(rt_node.rate) / Median(rt_peer.rate));
    }
  }
  if (!sort_peer.ms.empty() && !sort_cow.ms.empty()) {
    std::printf("  cow sort speed-up over node's own: %.1fx (target >= 10x)\n",
                Median(sort_peer.ms) / Median(sort_cow.ms));
  }
  const std::pair<const char*, const Figures*> runners[] = {
      {"raw", &rt_raw},   {"epoll", &rt_epoll},
      {"cow", &rt_cow},   {"cow-thread", &rt_cow_thread},
      {"node", &rt_node}, {"peer", &rt_peer}};
  for (const auto& [name, f] : runners) {
    FigureLine(name, "round_trips_per_s", f->rate);
    FigureLine(name, "p50_us", f->p50);
    FigureLine(name, "cpu_us_per_rt", f->cpu);
  }
  FigureLine("cow", "sort_ms", sort_cow.ms);
  FigureLine("node", "sort_ms", sort_node.ms);
  FigureLine("peer", "sort_ms", sort_peer.ms);
  if (!ok) std::fprintf(stderr, "ipc_bench: some figures are missing (see above)\n");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace drover

int main(int argc, char** argv) { return drover::Main(argc, argv); }
