// threads_bench: tasks per second straight through the threads backend (no
// coordinator, no worker): submit N tasks as fast as possible, wait for the
// N OnFinished events, repeat, print the median.
//
//   threads_bench [--tasks 200000] [--slots NCPU] [--runs 3]
//                 [--fn noop] [--args JSON] [--bare 1]
//
// --bare 1 runs the limit instead: the same number of empty closures through
// a bare mutex-and-condition-variable queue to the same number of threads,
// with the same completion count and wake-up. No backend, no payload, no
// function registry: what any thread pool pays per task on this machine.
// `tools/bench/bench threads` prints the backend's ratio to it, and the
// bench-smoke test fails when that ratio collapses.
//
// The peer is a Node worker_threads pool (piscina), measured on this kind of
// machine at 35,000 to 47,000 noop tasks/s; the target is 10x that.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/functions/plugin_loader.h"
#include "backends/threads/threads_backend.h"

namespace drover {
namespace {

constexpr double kPiscinaTasksPerSecond = 40'000;  // the middle of 35k..47k
constexpr auto kRunLimit = std::chrono::minutes(5);

// Counts finished attempts; wakes the main thread after the last one.
class Counter : public BackendEvents {
 public:
  explicit Counter(uint64_t expected) : expected_(expected) {}
  void OnStarted(uint64_t, int) override {}
  void OnFinished(uint64_t, AttemptOutcome outcome) override {
    if (!outcome.ok()) failed_.fetch_add(1, std::memory_order_relaxed);
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == expected_) {
      std::lock_guard<std::mutex> lock(mu_);
      all_done_ = true;
      cv_.notify_all();
    }
  }
  bool Wait(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return all_done_; });
  }
  uint64_t failed() const { return failed_.load(); }
  uint64_t done() const { return done_.load(); }

 private:
  const uint64_t expected_;
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> failed_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool all_done_ = false;
};

struct Options {
  uint64_t tasks = 200'000;
  int slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int runs = 3;
  std::string fn = "noop";
  std::string args;
  bool bare = false;
};

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return false;
    const char* value = argv[++i];
    if (flag == "--tasks") {
      o.tasks = std::strtoull(value, nullptr, 10);
    } else if (flag == "--slots") {
      o.slots = std::atoi(value);
    } else if (flag == "--runs") {
      o.runs = std::atoi(value);
    } else if (flag == "--fn") {
      o.fn = value;
    } else if (flag == "--args") {
      o.args = value;
    } else if (flag == "--bare") {
      o.bare = std::strcmp(value, "0") != 0;
    } else {
      return false;
    }
  }
  return o.tasks > 0 && o.slots > 0 && o.runs > 0;
}

// One run; returns tasks/s, or a negative number on failure.
double Run(const Options& o, const std::shared_ptr<const FunctionRegistry>& registry) {
  Counter counter(o.tasks);
  ThreadsBackend backend(o.slots, registry);
  if (Status s = backend.Start(&counter); !s.ok()) {
    std::fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return -1;
  }
  // Every task's payload is the same ThreadsTask: encoded once, decoded by
  // the backend per task, as a worker's are.
  const std::string payload = ThreadsPayload(o.fn, o.args);
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 1; i <= o.tasks; ++i) {
    TaskAttempt a;
    a.attempt_id = i;
    a.payload = payload;
    if (Status s = backend.Submit(std::move(a)); !s.ok()) {
      std::fprintf(stderr, "submit: %s\n", s.ToString().c_str());
      return -1;
    }
  }
  const bool all = counter.Wait(t0 + kRunLimit);
  const auto t1 = std::chrono::steady_clock::now();
  backend.Shutdown(std::chrono::seconds(5));
  if (!all) {
    std::fprintf(stderr, "only %llu of %llu tasks finished in time\n",
                 static_cast<unsigned long long>(counter.done()),
                 static_cast<unsigned long long>(o.tasks));
    return -1;
  }
  if (counter.failed() != 0) {
    std::fprintf(stderr, "%llu tasks failed\n",
                 static_cast<unsigned long long>(counter.failed()));
    return -1;
  }
  return static_cast<double>(o.tasks) / std::chrono::duration<double>(t1 - t0).count();
}

// One run of the limit (--bare): returns tasks/s. The queue and its threads
// are created before the clock starts, as the backend's are in Start().
double RunBare(const Options& o) {
  std::mutex mu;
  std::condition_variable ready;
  std::deque<std::function<void()>> queue;  // guarded by mu
  bool stopping = false;                    // guarded by mu
  std::atomic<uint64_t> done{0};
  std::mutex done_mu;
  std::condition_variable all_done_cv;
  bool all_done = false;  // guarded by done_mu
  std::vector<std::thread> threads;
  for (int t = 0; t < o.slots; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        std::function<void()> task;
        {
          std::unique_lock<std::mutex> lock(mu);
          ready.wait(lock, [&] { return stopping || !queue.empty(); });
          if (queue.empty()) return;
          task = std::move(queue.front());
          queue.pop_front();
        }
        task();
        if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == o.tasks) {
          std::lock_guard<std::mutex> lock(done_mu);
          all_done = true;
          all_done_cv.notify_all();
        }
      }
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 1; i <= o.tasks; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      queue.emplace_back([] {});
    }
    ready.notify_one();
  }
  bool finished;
  {
    std::unique_lock<std::mutex> lock(done_mu);
    finished = all_done_cv.wait_until(lock, t0 + kRunLimit, [&] { return all_done; });
  }
  const auto t1 = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu);
    stopping = true;
  }
  ready.notify_all();
  for (std::thread& t : threads) t.join();
  if (!finished) return -1;
  return static_cast<double>(o.tasks) / std::chrono::duration<double>(t1 - t0).count();
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: threads_bench [--tasks N] [--slots S] [--runs R] [--fn NAME] "
                 "[--args JSON] [--bare 1]\n");
    return 2;
  }
  auto registry = BuildFunctionRegistry({});
  if (!registry.ok()) {
    std::fprintf(stderr, "%s\n", registry.status().ToString().c_str());
    return 1;
  }
  std::printf("%s: %llu '%s' tasks, %d slots, %d runs (%u cores)\n",
              o.bare ? "bare queue (the limit)" : "threads backend",
              static_cast<unsigned long long>(o.tasks), o.bare ? "empty" : o.fn.c_str(),
              o.slots, o.runs, std::thread::hardware_concurrency());
  std::vector<double> rates;
  for (int r = 0; r < o.runs; ++r) {
    const double rate = o.bare ? RunBare(o) : Run(o, *registry);
    if (rate < 0) return 1;
    std::printf("  run %d: %.0f tasks/s\n", r + 1, rate);
    rates.push_back(rate);
  }
  std::sort(rates.begin(), rates.end());
  const double median = rates[rates.size() / 2];
  std::printf("median: %.0f tasks/s\n", median);
  if (o.fn == "noop" && !o.bare) {  // the peer figure is for noop tasks only
    std::printf(
        "vs piscina (Node worker_threads, ~%.0f tasks/s here): %.1fx (target >= 10x)\n",
        kPiscinaTasksPerSecond, median / kPiscinaTasksPerSecond);
  }
  return 0;
}

}  // namespace
}  // namespace drover

int main(int argc, char** argv) { return drover::Main(argc, argv); }
