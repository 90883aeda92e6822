// Backend: where a worker runs task attempts. The shape is ninja's
// CommandRunner (src/build.h): start, capacity, submit, cancel, shut down,
// and completion events.
//
// Threading: Submit, Cancel and Shutdown are called from the worker's I/O
// thread. A backend runs its work on threads of its own and reports through
// BackendEvents, from any of its threads.
#ifndef DROVER_BACKENDS_BACKEND_H_
#define DROVER_BACKENDS_BACKEND_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/base/clock.h"
#include "core/base/outcome.h"
#include "core/base/status.h"

namespace drover {

// A pool of warm worker processes for the fork backend, as declared under
// `pools:` in a job spec or in a worker's configuration (docs/spec.md).
struct PoolSpec {
  std::string name;
  // "process": each instance runs `command` and speaks the IPC channel on
  // fd 3 (NODE_CHANNEL_FD). "cow": instances are forked from the worker's
  // zygote and run registered functions (like the threads backend).
  std::string mode = "process";
  std::vector<std::string> command;  // argv; empty in cow mode
  int instances = 1;                 // processes kept warm
  int max_tasks = 0;                 // recycle a process after N tasks; 0: never
  Duration idle_timeout{0};          // stop idle processes after this; 0: never
  std::vector<std::pair<std::string, std::string>> env;
  std::string cwd;
};

// A service of the cluster backend, as declared under `services:` in a job
// spec (docs/spec.md): N supervised instances of a server sharing a port.
// The worker starts it for a job when a task of that job needs it.
struct ServiceConfig {
  std::string name;
  std::vector<std::string> command;  // argv
  int instances = 1;
  std::string host = "127.0.0.1";
  int port = 0;                      // 0: a free port
  std::string mode = "reuseport";    // reuseport | shared | round-robin
  std::string ready = "tcp";         // tcp | http
  std::string ready_path = "/";      // http: GET this, expect 2xx
  Duration ready_timeout = std::chrono::seconds(30);
  std::vector<std::pair<std::string, std::string>> env;
  std::string cwd;
  Duration idle_timeout = std::chrono::seconds(60);  // stop when unused this long
};

// A cluster task's HTTP request.
struct HttpRequestSpec {
  std::string method = "GET";
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int expect = 200;
  Duration timeout{0};  // 0: the attempt's timeout, else 30s
};

// One attempt to run a task, as a backend receives it.
struct TaskAttempt {
  uint64_t attempt_id = 0;  // unique per coordinator; names the attempt
  std::string job_id;
  std::string task;         // the instance name
  uint32_t number = 1;      // 1 for the first attempt of the task

  // spawn backend
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;  // added to the worker's
  std::string cwd;                                        // empty: inherit
  Duration timeout{0};                                    // 0: none
  Duration kill_grace = std::chrono::seconds(5);
  uint64_t output_limit = 8ull << 20;  // bytes kept per stream

  // threads backend (and fork pools in `cow` mode): the registered function
  // to call and its arguments, as JSON text.
  std::string fn;
  std::string args_json;
  // threads backend: plugins (shared libraries) the job asks for; loaded
  // once per worker, in order, before the function is looked up.
  std::vector<std::string> plugins;
  // fork backend: the pool to send the message to (its full declaration, so
  // a worker can start a pool it has not seen), and the message as JSON.
  std::string pool;
  PoolSpec pool_spec;
  std::string message_json;
  // Any backend: the services the task needs up on the worker (the
  // cluster backend starts them, and replaces ${services.NAME.port|host}
  // in the fields above before the attempt is submitted). cluster backend:
  // the service to send `request` to.
  std::vector<ServiceConfig> services;
  // Any backend: the worker's own services (its configuration's
  // `services:`) the task needs, by name (Dispatch.worker_services); held
  // and replaced like `services`.
  std::vector<std::string> worker_services;
  std::string service;
  HttpRequestSpec request;

  // Where the backend writes the captured stdout and stderr. The files are
  // created only when the stream produces output.
  std::filesystem::path stdout_path;
  std::filesystem::path stderr_path;
};

// Receives a backend's events. Implementations must be thread-safe and
// return quickly (they are called on the backend's own threads).
class BackendEvents {
 public:
  virtual ~BackendEvents() = default;
  // The attempt is running (pid of its process, or 0 when there is none).
  virtual void OnStarted(uint64_t attempt_id, int pid) = 0;
  // The attempt ended. Called exactly once per submitted attempt, also for
  // a launch failure, a timeout, a cancel and at Shutdown.
  virtual void OnFinished(uint64_t attempt_id, AttemptOutcome outcome) = 0;
};

class Zygote;  // backends/fork/zygote.h

struct BackendConfig {
  int slots = 1;  // attempts that may run at once
  // threads backend: shared libraries to load functions from (plugin ABI,
  // include/drover/plugin.h), in order.
  std::vector<std::filesystem::path> plugins;
  // fork backend: the zygote that `cow` pools fork their processes from
  // (StartZygote, called by the worker's main before any thread starts).
  // Null: cow pools fail their attempts with launch-failed.
  std::shared_ptr<Zygote> zygote;
  // Where the backend reads time for its deadlines (timeouts, kill graces,
  // idle timeouts, backoff); must outlive the backend. Null: the real
  // steady clock. Tests pass a FakeClock.
  const Clock* clock = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Starts the backend's threads. `events` must outlive the backend.
  // On failure nothing is running.
  virtual Status Start(BackendEvents* events) = 0;
  // How many attempts may run at once.
  virtual int Capacity() const = 0;
  // Queues an attempt; never blocks on the attempt itself. A failure to
  // launch it is reported through OnFinished(kLaunchFailed), not here; a
  // non-ok Status means the call itself was wrong (not started, at
  // capacity, duplicate id) and no event will follow.
  virtual Status Submit(TaskAttempt attempt) = 0;
  // Asks for the attempt to stop (TERM to its process group, the attempt's
  // kill_grace, then KILL). OnFinished(kCancelled) follows unless it
  // finished first. Unknown ids are ignored.
  virtual void Cancel(uint64_t attempt_id) = 0;
  // Cancels everything still running, waits up to `grace` for it to stop,
  // kills what is left, and joins the backend's threads. Every submitted
  // attempt has had its OnFinished when this returns. Idempotent.
  virtual void Shutdown(Duration grace) = 0;
};

using BackendFactory =
    std::function<Result<std::unique_ptr<Backend>>(const BackendConfig&)>;

// Maps the backend names used in job specs to factories. A worker builds one
// registry; a new backend is one folder plus one Register call.
class BackendRegistry {
 public:
  // Fails with kAlreadyExists on a duplicate name.
  Status Register(std::string name, BackendFactory factory);
  Result<std::unique_ptr<Backend>> Create(const std::string& name,
                                          const BackendConfig& config) const;
  bool Has(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, BackendFactory> factories_;
};

// Registers every backend compiled into this build: spawn, fork, threads,
// cluster.
void RegisterBuiltinBackends(BackendRegistry& registry);

}  // namespace drover

#endif  // DROVER_BACKENDS_BACKEND_H_
