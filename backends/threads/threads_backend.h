// ThreadsBackend: runs registered functions (built-ins and plugins, see
// backends/functions/) on a fixed pool of `slots` threads in the worker's
// own process. The model is Node's worker_threads or a TBB executor: no
// process per task, so a task costs a queue push and a function call.
//
// Structure: one mutex, a FIFO of attempts that pool threads wait on, and
// one supervisor thread that sleeps until the nearest deadline
// (steady_clock) and reports timeouts and cancels. Nothing polls.
//
// Details callers may rely on:
//   - Submit never refuses for want of a free thread: attempts queue (FIFO)
//     until a pool thread takes them. It refuses with kFailedPrecondition
//     (not started, shut down) or kAlreadyExists (the id is in flight).
//   - The payload is a drover.threads.ThreadsTask (ThreadsPayload below);
//     one that does not decode gets OnFinished(kLaunchFailed).
//   - Plugins: those of the BackendConfig load at Create. Those a job asks
//     for (ThreadsTask.plugins) load on a pool thread, in order, before
//     the function is looked up, once per backend: a file loaded already
//     (by the config or another job, under any path) is not loaded again.
//     A plugin that fails to load fails the attempt with kLaunchFailed and
//     the loader's message, which names the file. A job's plugin functions
//     stay available to later attempts.
//   - OnStarted(id, 0) comes (on a pool thread) before the function is
//     called. An attempt cancelled while queued, and a launch failure
//     (unknown function, args that are not JSON) get only OnFinished.
//   - Outcomes carry wall time but no CPU time or RSS: those belong to the
//     whole process, and a per-thread CPU clock costs a system call per
//     task (measured: it cut throughput by 10x on the development VM).
//   - Outcomes: success is kNone with exit_code 0 and result_json; an error
//     returned or thrown by the function is kExit with exit_code 1 and the
//     error text as message (so `retries:` applies); an unknown function or
//     args that are not JSON are kLaunchFailed (FunctionRegistry::Invoke).
//   - Timeouts and cancels are cooperative: the timeout runs from the
//     moment a thread takes the attempt. At the deadline (or on Cancel) the
//     attempt's token fires and the attempt is reported kTimeout (or
//     kCancelled) right then, whether or not the function has returned.
//     A function that ignores its token keeps its thread: that slot is
//     lost (LostSlots()) until the function returns, its late result is
//     discarded, and queued attempts run on the other threads. Capacity()
//     does not change.
//   - A crash (SIGSEGV, abort) inside a function kills the whole process:
//     threads share it. Code that may crash or hang belongs in a `fork`
//     pool with `mode: cow`.
//   - Shutdown(grace) fires every token, reports every unreported attempt
//     as kCancelled, waits up to `grace` for running functions to return
//     and joins their threads. A thread whose function is still running
//     after the grace is detached: it keeps the backend's shared state and
//     the function registry (and so any plugin library) alive until it
//     returns, and never calls BackendEvents again.
//   - Thread-safety: every method may be called from any thread.
#ifndef DROVER_BACKENDS_THREADS_THREADS_BACKEND_H_
#define DROVER_BACKENDS_THREADS_THREADS_BACKEND_H_

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "backends/functions/registry.h"

namespace drover {

class ThreadsBackend final : public Backend {
 public:
  // The backend the registry builds: built-in functions plus those of
  // config.plugins (in order). Fails, naming the file, when a plugin does
  // not load (plugin_loader.h), or when config.slots < 1.
  static Result<std::unique_ptr<ThreadsBackend>> Create(const BackendConfig& config);

  // A backend of `slots` threads (at least 1) over `registry`.
  ThreadsBackend(int slots, std::shared_ptr<const FunctionRegistry> registry);
  ~ThreadsBackend() override;  // calls Shutdown(0)

  ThreadsBackend(const ThreadsBackend&) = delete;
  ThreadsBackend& operator=(const ThreadsBackend&) = delete;

  Status Start(BackendEvents* events) override;
  int Capacity() const override;
  Status Submit(TaskAttempt attempt) override;
  void Cancel(uint64_t attempt_id) override;
  void Shutdown(Duration grace) override;
  bool CapturesOutput() const override { return false; }

  // Pool threads still running a function whose attempt was already
  // reported (timed out or cancelled): they take no work until it returns.
  int LostSlots() const;
  // Attempts submitted but not yet taken by a thread.
  size_t Queued() const;

  // The functions attempts are looked up in now (a snapshot: a job's
  // plugin loaded later publishes a new registry).
  std::shared_ptr<const FunctionRegistry> registry() const;

 private:
  struct State;  // shared with the pool threads, which may outlive us

  const int slots_;
  const std::shared_ptr<State> state_;

  std::mutex lifecycle_mu_;  // serialises Start and Shutdown
  std::vector<std::thread> pool_;
  std::thread supervisor_;
};

// A serialized ThreadsTask (backends/threads/threads.proto), the payload a
// threads task's DISPATCH carries: call `fn` with `args_json` after loading
// `plugins`. For tests and tools.
std::string ThreadsPayload(const std::string& fn, const std::string& args_json = "null",
                           const std::vector<std::string>& plugins = {});

}  // namespace drover

#endif  // DROVER_BACKENDS_THREADS_THREADS_BACKEND_H_
