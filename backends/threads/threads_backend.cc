// The threads backend: a FIFO of calls under one mutex, `slots` pool
// threads that take calls from it, and a supervisor thread that owns the
// deadlines and reports timeouts and cancels.
//
// Who reports an attempt (exactly once, guarded by Call::reported):
//   - the pool thread that ran it, when the function returns first;
//   - the supervisor, at the deadline or after Cancel/Shutdown, when the
//     function is still running (its late result is then discarded, and
//     its thread counts as a lost slot until it returns);
//   - the pool thread, right after OnStarted, when a cancel arrived while
//     OnStarted ran (so that OnFinished never overtakes OnStarted), and
//     instead of OnStarted for a launch failure (unknown function, bad args).
// Events are never called with the mutex held.
#include "backends/threads/threads_backend.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory_resource>
#include <set>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backends/functions/plugin_loader.h"
#include "backends/process/adaptive_spin.h"
#include "backends/threads/threads.pb.h"

namespace drover {
// The types State holds: not in an anonymous namespace, since State is
// declared in the header (gcc's -Wsubobject-linkage, which a unity build
// reports), but named for this file alone.
namespace threads_backend_internal {

enum class Phase : uint8_t {
  kQueued,    // in the queue
  kStarting,  // taken by a thread: args being parsed, OnStarted running
  kRunning,   // the function is running
  kReturned,  // the function returned
};

struct Call;
using CallPtr = std::shared_ptr<Call>;
using Timers = std::multimap<SteadyTime, CallPtr>;

// One submitted attempt. The fields above the line are set by Submit and
// then only read (the token is thread-safe on its own; its deadline is set
// by the pool thread before the function runs); the rest is guarded by
// State::mu.
struct Call {
  uint64_t id = 0;
  std::string fn;
  std::string args_json;
  std::vector<std::string> plugins;  // the job's plugins, loaded before the lookup
  Duration timeout{0};
  CancelToken token;
  // ---
  Phase phase = Phase::kQueued;
  bool reported = false;  // OnFinished was (or is being) called
  // A stop asked for while OnStarted ran; the pool thread reports it.
  FailureReason stop = FailureReason::kNone;
  const char* stop_message = "";
  SteadyTime started;
  bool has_timer = false;
  Timers::iterator timer;  // its entry in State::timers, when has_timer
};

}  // namespace threads_backend_internal

using threads_backend_internal::Call;
using threads_backend_internal::CallPtr;
using threads_backend_internal::Phase;
using threads_backend_internal::Timers;

namespace {

using std::chrono::steady_clock;

std::string Seconds(Duration d) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2fs", std::chrono::duration<double>(d).count());
  return buffer;
}

// now + d, saturating: a timeout of "forever" must not wrap.
SteadyTime After(SteadyTime now, Duration d) {
  if (d > SteadyTime::max() - now) return SteadyTime::max();
  return now + d;
}

AttemptOutcome Stopped(FailureReason reason, std::string message, Duration wall) {
  AttemptOutcome o;
  o.reason = reason;
  o.message = std::move(message);
  o.wall = wall;
  return o;
}

}  // namespace

struct ThreadsBackend::State {
  enum class Life { kNew, kRunning, kStopping, kStopped };

  explicit State(std::shared_ptr<const FunctionRegistry> r) : registry(std::move(r)) {}

  BackendEvents* events = nullptr;  // set by Start before any thread runs

  std::mutex mu;
  // The functions, copied on write when a job's plugin is loaded. Pool
  // threads keep a snapshot and refresh it when the version moves.
  std::shared_ptr<const FunctionRegistry> registry;  // guarded by mu
  uint64_t registry_version = 0;                     // guarded by mu
  std::condition_variable work_cv;                   // pool: a call queued, or stopping
  std::condition_variable supervisor_cv;  // reports, an earlier deadline, stopping
  std::condition_variable quiet_cv;       // Shutdown: threads out, callbacks done
  Life life = Life::kNew;                 // guarded by mu
  // The queue's chunks and the map's nodes come from a pool that only
  // ever is used under mu: no malloc per task, and no cross-thread frees.
  std::pmr::unsynchronized_pool_resource memory;             // guarded by mu
  std::pmr::deque<CallPtr> queue{&memory};                   // guarded by mu
  std::pmr::unordered_map<uint64_t, CallPtr> live{&memory};  // guarded by mu: unreported
  Timers timers;                                             // guarded by mu
  // When the supervisor is due to wake; min() while it is awake (it looks
  // at the timers before it sleeps again, so nobody needs to wake it).
  SteadyTime supervisor_wake = SteadyTime::min();            // guarded by mu
  std::vector<std::pair<uint64_t, AttemptOutcome>> reports;  // guarded by mu
  int idle = 0;              // pool threads waiting on work_cv; guarded by mu
  // Pool threads awake and not running a call: each looks at the queue
  // before it runs or sleeps. A thread is woken only when a call is queued
  // and none is searching (Go's scheduler wakes its threads the same way):
  // a burst of short calls wakes one or two, not one each. Each wake-up
  // hands a token to the thread it wakes, counted here already.
  int searching = 0;         // guarded by mu
  // Before it sleeps, one searching thread at a time looks for a call for
  // up to the spin's budget (`spinning` counts it, and it stays counted in
  // `searching`, so that a Submit meanwhile wakes nobody). The calls of a
  // DISPATCH of many come a microsecond or two apart, and a noop is as
  // quick: without the look the pool thread slept after each call and the
  // worker's thread paid a futex wake-up for the next. `queued` mirrors
  // queue.size() for the look, which does not take mu. The spin turns
  // itself off when a look finds nothing (AdaptiveSpin), and on again
  // when a sleeping thread is woken within the budget.
  int spinning = 0;               // guarded by mu
  AdaptiveSpin spin{kPoolSpin};   // guarded by mu
  std::atomic<size_t> queued{0};  // written under mu
  static constexpr Duration kPoolSpin = std::chrono::microseconds(20);
  int wake_tokens = 0;       // woken, not yet awake; guarded by mu
  int lost = 0;              // pool threads running a reported call; guarded by mu
  int in_callbacks = 0;      // pool threads inside OnStarted/OnFinished; guarded by mu
  int in_loop = 0;           // pool threads not yet out of PoolLoop; guarded by mu
  std::vector<char> exited;  // per pool thread; guarded by mu

  // Serialises plugin loading (dlopen runs the library's constructors, so
  // it stays out of mu). The plugin paths, as jobs spell them, known to be
  // loaded: the common case costs a set lookup, not a realpath().
  std::mutex plugins_mu;
  std::set<std::string, std::less<>> plugins_loaded;  // guarded by plugins_mu

  // Pool thread, mu not held: loads the plugins in `paths` that are not
  // loaded yet (all or nothing), publishing a new registry if any was.
  // Returns the registry to look the function up in.
  Result<std::shared_ptr<const FunctionRegistry>> EnsurePlugins(
      const std::vector<std::string>& paths);

  // mu held: wakes an idle pool thread, if a call is queued and no thread
  // is searching. Returns whether it did (the caller then notifies work_cv).
  bool NeedsAWake() {
    if (queue.empty() || searching > 0 || idle <= wake_tokens) return false;
    ++searching;
    ++wake_tokens;
    return true;
  }

  // Pool thread, mu held: one callback (or callback pair) is over.
  void EndCallback() {
    if (--in_callbacks == 0 && life != Life::kRunning) quiet_cv.notify_all();
  }

  // The bodies of the pool threads and of the supervisor. Each thread holds
  // a shared_ptr to this State (its std::thread argument), so a detached
  // pool thread keeps it alive.
  void PoolLoop(size_t index);
  void SupervisorLoop();

  // mu held: reports `call` as stopped through the supervisor.
  void ReportStop(const CallPtr& call, FailureReason reason, std::string message,
                  SteadyTime now) {
    call->reported = true;
    live.erase(call->id);
    Duration wall{0};
    if (call->phase == Phase::kRunning) {
      ++lost;  // its thread is busy until the function returns
      wall = now - call->started;
    }
    reports.emplace_back(call->id, Stopped(reason, std::move(message), wall));
    supervisor_cv.notify_one();
  }
};

Result<std::shared_ptr<const FunctionRegistry>> ThreadsBackend::State::EnsurePlugins(
    const std::vector<std::string>& paths) {
  std::lock_guard<std::mutex> plugins_lock(plugins_mu);
  std::shared_ptr<const FunctionRegistry> current;
  {
    std::lock_guard<std::mutex> lock(mu);
    current = registry;
  }
  bool all_loaded = true;
  for (const std::string& path : paths)
    all_loaded = all_loaded && plugins_loaded.count(path);
  if (all_loaded) return current;

  // Copy on write: running calls keep the registry they started with.
  auto next = std::make_shared<FunctionRegistry>(*current);
  for (const std::string& path : paths) {
    DROVER_RETURN_IF_ERROR(LoadPlugin(path, *next));  // Ok if loaded already
  }
  for (const std::string& path : paths) plugins_loaded.insert(path);
  std::lock_guard<std::mutex> lock(mu);
  registry = next;
  ++registry_version;
  return std::shared_ptr<const FunctionRegistry>(std::move(next));
}

void ThreadsBackend::State::PoolLoop(size_t index) {
  State& st = *this;
  std::unique_lock<std::mutex> lock(st.mu);
  // This thread's snapshot of the registry: refreshed under the lock it
  // holds anyway, only when a plugin load moved the version.
  std::shared_ptr<const FunctionRegistry> functions = st.registry;
  uint64_t functions_version = st.registry_version;
  // Whether this thread is one of st.searching: from its wake-up (or the
  // end of a call) until it takes a call or sleeps.
  bool searching = false;
  auto search = [&] {
    ++st.searching;
    searching = true;
  };
  for (;;) {
    if (st.queue.empty()) {
      if (searching && st.spinning == 0 && st.life == State::Life::kRunning &&
          st.spin.Budget() > Duration(0)) {
        ++st.spinning;
        const Duration budget = st.spin.Budget();
        lock.unlock();
        const bool found = SpinUntil(
            budget, [&] { return st.queued.load(std::memory_order_acquire) > 0; });
        lock.lock();
        --st.spinning;
        if (!found) st.spin.Answered(Duration::max());  // off until a quick wake-up
        if (!st.queue.empty() || st.life != State::Life::kRunning) continue;
      }
      if (searching) {
        --st.searching;
        searching = false;
      }
      if (st.life != State::Life::kRunning) break;
      ++st.idle;
      const SteadyTime slept = steady_clock::now();
      st.work_cv.wait(
          lock, [&] { return st.wake_tokens > 0 || st.life != State::Life::kRunning; });
      --st.idle;
      if (st.wake_tokens > 0) {
        --st.wake_tokens;
        searching = true;  // counted by whoever woke it
        // Woken for a call within the budget: the next look is worth it.
        st.spin.Answered(steady_clock::now() - slept);
      }
      continue;
    }
    CallPtr call = std::move(st.queue.front());
    st.queue.pop_front();
    st.queued.store(st.queue.size(), std::memory_order_release);
    if (searching) {
      --st.searching;
      searching = false;
    }
    // This thread is about to run a call that may block: if calls are
    // left and nobody else will look at them, wake a thread that will.
    if (st.NeedsAWake()) st.work_cv.notify_one();
    if (call->reported) {  // cancelled while it was queued
      search();
      continue;
    }

    call->phase = Phase::kStarting;
    call->started = steady_clock::now();
    ++st.in_callbacks;
    if (functions_version != st.registry_version) {
      functions = st.registry;
      functions_version = st.registry_version;
    }
    lock.unlock();
    // Load the job's plugins, find the function and parse the args first:
    // like a command that is not found, a launch failure gets OnFinished
    // without OnStarted. The registry is a plain pointer on the common
    // path: copying the shared_ptr would bounce its reference count between
    // the pool threads on every task.
    FunctionRegistry::Prepared prepared;
    const FunctionRegistry* registry = functions.get();
    std::shared_ptr<const FunctionRegistry> with_plugins;
    if (!call->plugins.empty()) {
      auto loaded = st.EnsurePlugins(call->plugins);
      if (loaded.ok()) {
        with_plugins = std::move(loaded).value();
        registry = with_plugins.get();
      } else {
        registry = nullptr;
        prepared.failure.reason = FailureReason::kLaunchFailed;
        prepared.failure.message = loaded.status().message();
      }
    }
    if (registry != nullptr) prepared = registry->Prepare(call->fn, call->args_json);
    if (prepared.ok()) st.events->OnStarted(call->id, 0);
    lock.lock();
    if (!prepared.ok() || call->stop != FailureReason::kNone) {
      // A launch failure, or a cancel (or shutdown) while OnStarted ran:
      // reported here, so that it cannot overtake OnStarted.
      call->reported = true;
      st.live.erase(call->id);
      AttemptOutcome o = prepared.ok()
                             ? Stopped(call->stop, call->stop_message, Duration(0))
                             : std::move(prepared.failure);
      lock.unlock();
      st.events->OnFinished(call->id, std::move(o));
      lock.lock();
      st.EndCallback();
      search();
      continue;
    }
    st.EndCallback();

    call->phase = Phase::kRunning;
    if (call->timeout > Duration(0)) {
      const SteadyTime deadline = After(call->started, call->timeout);
      call->token.set_deadline(deadline);
      call->timer = st.timers.emplace(deadline, call);
      call->has_timer = true;
      if (deadline < st.supervisor_wake) st.supervisor_cv.notify_one();
    }
    lock.unlock();
    AttemptOutcome outcome = registry->Run(call->fn, prepared, call->token);
    const SteadyTime end = steady_clock::now();
    lock.lock();

    call->phase = Phase::kReturned;
    if (call->has_timer) {
      st.timers.erase(call->timer);
      call->has_timer = false;
    }
    if (call->reported) {  // timed out or cancelled: the result is late
      --st.lost;
      search();
      continue;
    }
    call->reported = true;
    st.live.erase(call->id);
    ++st.in_callbacks;
    lock.unlock();
    outcome.wall = end - call->started;
    const uint64_t id = call->id;
    call.reset();  // free it outside the lock
    st.events->OnFinished(id, std::move(outcome));
    lock.lock();
    st.EndCallback();
    search();
  }
  st.exited[index] = 1;
  --st.in_loop;
  st.quiet_cv.notify_all();
}

void ThreadsBackend::State::SupervisorLoop() {
  State& st = *this;
  std::vector<std::pair<uint64_t, AttemptOutcome>> batch;
  std::unique_lock<std::mutex> lock(st.mu);
  for (;;) {
    st.supervisor_wake = SteadyTime::min();
    if (!st.reports.empty()) {
      batch.swap(st.reports);
      lock.unlock();
      for (auto& [id, outcome] : batch) st.events->OnFinished(id, std::move(outcome));
      batch.clear();
      lock.lock();
      continue;
    }
    // Shutdown queues its reports and leaves kRunning in one critical
    // section, so they have been delivered above before this exit.
    if (st.life != State::Life::kRunning) break;

    const SteadyTime now = steady_clock::now();
    while (!st.timers.empty() && st.timers.begin()->first <= now) {
      CallPtr call = std::move(st.timers.begin()->second);
      st.timers.erase(st.timers.begin());
      call->has_timer = false;
      if (call->reported || call->phase != Phase::kRunning) continue;
      call->token.Cancel();
      st.ReportStop(call, FailureReason::kTimeout,
                    "timed out after " + Seconds(call->timeout), now);
    }
    if (!st.reports.empty()) continue;

    if (st.timers.empty()) {
      st.supervisor_wake = SteadyTime::max();
      st.supervisor_cv.wait(lock);
    } else {
      st.supervisor_wake = st.timers.begin()->first;
      st.supervisor_cv.wait_until(lock, st.supervisor_wake);
    }
  }
}

Result<std::unique_ptr<ThreadsBackend>> ThreadsBackend::Create(
    const BackendConfig& config) {
  if (config.slots < 1) {
    return InvalidArgument("threads backend: slots must be at least 1, not " +
                           std::to_string(config.slots));
  }
  auto registry = BuildFunctionRegistry(config.plugins);
  if (!registry.ok()) return registry.status().WithContext("threads backend");
  return std::make_unique<ThreadsBackend>(config.slots, std::move(registry).value());
}

ThreadsBackend::ThreadsBackend(int slots,
                               std::shared_ptr<const FunctionRegistry> registry)
    : slots_(slots < 1 ? 1 : slots),
      state_(std::make_shared<State>(std::move(registry))) {}

ThreadsBackend::~ThreadsBackend() { Shutdown(Duration(0)); }

Status ThreadsBackend::Start(BackendEvents* events) {
  if (events == nullptr) return InvalidArgument("threads backend: no events sink");
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->life != State::Life::kNew) {
      return FailedPrecondition("threads backend: already started");
    }
    state_->events = events;
    state_->life = State::Life::kRunning;
    state_->exited.assign(static_cast<size_t>(slots_), 0);
    state_->in_loop = slots_;
  }
  try {
    supervisor_ = std::thread(&State::SupervisorLoop, state_);
    pool_.reserve(static_cast<size_t>(slots_));
    for (int i = 0; i < slots_; ++i) {
      pool_.emplace_back(&State::PoolLoop, state_, static_cast<size_t>(i));
      // Names show up in top -H, gdb and perf ("drover-fn-3").
      char name[16];
      std::snprintf(name, sizeof name, "drover-fn-%u", static_cast<unsigned>(i) % 10000u);
      ::pthread_setname_np(pool_.back().native_handle(), name);
    }
  } catch (const std::system_error& e) {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->life = State::Life::kStopped;  // nothing was submitted yet
      state_->in_loop -= slots_ - static_cast<int>(pool_.size());
    }
    state_->work_cv.notify_all();
    state_->supervisor_cv.notify_all();
    if (supervisor_.joinable()) supervisor_.join();
    for (std::thread& t : pool_) t.join();
    pool_.clear();
    return Unavailable(std::string("threads backend: cannot start a thread: ") +
                       e.what());
  }
  return Status::Ok();
}

int ThreadsBackend::Capacity() const { return slots_; }

std::string ThreadsPayload(const std::string& fn, const std::string& args_json,
                           const std::vector<std::string>& plugins) {
  threads::ThreadsTask task;
  task.set_fn(fn);
  task.set_args_json(args_json);
  for (const std::string& plugin : plugins) task.add_plugins(plugin);
  return task.SerializeAsString();
}

Status ThreadsBackend::Submit(TaskAttempt attempt) {
  // Built outside the lock: the critical section is a map insert and a push.
  threads::ThreadsTask task;
  const bool decoded = task.ParseFromString(attempt.payload);
  auto call = std::make_shared<Call>();
  call->id = attempt.attempt_id;
  call->fn = std::move(*task.mutable_fn());
  call->args_json = attempt.ExpandServiceRefs(task.args_json());
  call->plugins.assign(task.plugins().begin(), task.plugins().end());
  call->timeout = attempt.timeout;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->life != State::Life::kRunning) {
      return FailedPrecondition(state_->life == State::Life::kNew
                                    ? "threads backend: not started"
                                    : "threads backend: shut down");
    }
    if (!decoded) {
      // Reported by the supervisor thread, like a stop.
      AttemptOutcome o;
      o.reason = FailureReason::kLaunchFailed;
      o.message = "the threads task's payload is not a drover.threads.ThreadsTask";
      state_->reports.emplace_back(call->id, std::move(o));
      state_->supervisor_cv.notify_one();
      return Status::Ok();
    }
    if (!state_->live.try_emplace(call->id, call).second) {
      return AlreadyExists("threads backend: attempt " + std::to_string(call->id) +
                           " is already in flight");
    }
    // A searching thread takes it; with none, one is woken (see PoolLoop).
    state_->queue.push_back(std::move(call));
    state_->queued.store(state_->queue.size(), std::memory_order_release);
    wake = state_->NeedsAWake();
  }
  // Outside the lock, so that the woken thread does not block on it.
  if (wake) state_->work_cv.notify_one();
  return Status::Ok();
}

void ThreadsBackend::Cancel(uint64_t attempt_id) {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->live.find(attempt_id);
  if (it == state_->live.end()) return;  // unknown, or reported already
  CallPtr call = it->second;
  call->token.Cancel();
  switch (call->phase) {
    case Phase::kQueued:
      // The pool skips it when it reaches the head of the queue.
      state_->ReportStop(call, FailureReason::kCancelled, "cancelled before it started",
                         steady_clock::now());
      break;
    case Phase::kStarting:
      call->stop = FailureReason::kCancelled;
      call->stop_message = "cancelled";
      break;
    case Phase::kRunning:
      state_->ReportStop(call, FailureReason::kCancelled, "cancelled",
                         steady_clock::now());
      break;
    case Phase::kReturned:  // reported in the same critical section: not live
      break;
  }
}

void ThreadsBackend::Shutdown(Duration grace) {
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  State& st = *state_;
  SteadyTime give_up_at;
  {
    std::lock_guard<std::mutex> lock(st.mu);
    if (st.life == State::Life::kNew) st.life = State::Life::kStopped;
    if (st.life == State::Life::kStopped) return;
    st.life = State::Life::kStopping;
    const SteadyTime now = steady_clock::now();
    give_up_at = After(now, grace);
    // Fire every token, and report every unreported attempt as cancelled
    // (through the supervisor, before it exits), except those whose
    // OnStarted is running: their thread reports them right after it.
    std::vector<CallPtr> starting;
    std::vector<CallPtr> stopping;
    for (auto& [id, call] : st.live) {
      call->token.Cancel();
      if (call->phase == Phase::kStarting) {
        call->stop = FailureReason::kCancelled;
        call->stop_message = "cancelled: the threads backend shut down";
        starting.push_back(call);
      } else {
        stopping.push_back(call);
      }
    }
    for (const CallPtr& call : stopping) {
      st.ReportStop(call, FailureReason::kCancelled,
                    "cancelled: the threads backend shut down", now);
    }
    st.live.clear();
    for (CallPtr& call : starting) st.live.emplace(call->id, std::move(call));
    st.queue.clear();
    st.queued.store(0, std::memory_order_release);
  }
  st.work_cv.notify_all();
  st.supervisor_cv.notify_all();
  if (supervisor_.joinable()) supervisor_.join();

  std::vector<char> exited;
  {
    std::unique_lock<std::mutex> lock(st.mu);
    // Functions get the grace to return (cooperative ones do so at once)...
    st.quiet_cv.wait_until(lock, give_up_at, [&] { return st.in_loop == 0; });
    // ...but events are always waited for: they are quick by contract, and
    // none may run after Shutdown returns.
    st.quiet_cv.wait(lock, [&] { return st.in_callbacks == 0; });
    st.life = State::Life::kStopped;
    exited = st.exited;
  }
  for (size_t i = 0; i < pool_.size(); ++i) {
    // A thread still inside a function that ignored its token cannot be
    // stopped; it holds its own reference to the state and the registry,
    // and reports nothing more (its attempt is reported).
    if (exited[i]) {
      pool_[i].join();
    } else {
      pool_[i].detach();
    }
  }
  pool_.clear();
}

std::shared_ptr<const FunctionRegistry> ThreadsBackend::registry() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->registry;
}

int ThreadsBackend::LostSlots() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->lost;
}

size_t ThreadsBackend::Queued() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  size_t n = 0;
  for (const CallPtr& call : state_->queue) n += call->reported ? 0 : 1;
  return n;
}

}  // namespace drover
