// Zygote: the process `cow` fork pools are forked from.
//
// StartZygote() forks the worker while it is still single-threaded (before
// any backend thread or ZeroMQ context exists, so a plain fork() is safe).
// The zygote loads the functions once (the built-ins, the worker's plugins)
// and then waits on a control socket. For each pool process the fork
// backend asks for, it forks a child that shares the loaded code and data
// copy-on-write: the Unix fork that Node's child_process.fork is not.
//
// The children are forked with CLONE_PARENT, so they are children of the
// worker, not of the zygote: the backend watches, signals and reaps them
// exactly like the processes it starts with posix_spawn, and they outlive a
// zygote that dies. Each child leads its own process group, reads stdin
// from /dev/null, writes stdout/stderr into pipes the backend reads, and
// finds its IPC channel on fd 3. It runs requests {"fn": NAME, "args": ...}
// (cow_child.h) until the channel closes.
//
// Control protocol (SOCK_SEQPACKET, one JSON object per packet):
//   zygote -> worker, once:  {"ready": true, "functions": [NAME, ...]}
//                         or {"error": TEXT} (then it exits)
//   worker -> zygote:        {"op": "load", "paths": [PATH, ...]}
//   zygote -> worker:        {"ok": true} or {"error": TEXT}
//   worker -> zygote:        {"op": "fork", "pool": NAME, "env": [[K, V], ...],
//                             "cwd": DIR}
//   zygote -> worker:        {"pid": N} with 3 descriptors attached
//                            (SCM_RIGHTS): the worker's end of the child's
//                            channel and the read ends of its stdout and
//                            stderr pipes; or {"error": TEXT}.
// Closing the control socket stops the zygote (not its children).
#ifndef DROVER_BACKENDS_FORK_ZYGOTE_H_
#define DROVER_BACKENDS_FORK_ZYGOTE_H_

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/fork/fork_attempt.h"
#include "backends/functions/registry.h"
#include "backends/process/unique_fd.h"
#include "core/base/clock.h"
#include "core/base/status.h"

namespace drover {

struct ZygoteOptions {
  // Plugins to load (include/drover/plugin.h), in order, after the
  // built-ins: normally the worker's configured plugins.
  std::vector<std::filesystem::path> plugins;
  // Called in the zygote after the built-ins and plugins are registered, to
  // add more functions (tests add ones that crash or print).
  std::function<Status(FunctionRegistry&)> add_functions;
  // How long StartZygote waits for the zygote to load everything.
  Duration ready_timeout = std::chrono::seconds(30);
};

// A cow pool process, as the zygote hands it over. Not reaped yet: the
// caller (the worker is its parent) owns that.
struct CowProcess {
  pid_t pid = -1;   // also its process group id
  UniqueFd channel; // the worker's end of its IPC channel (blocking)
  UniqueFd out;     // read end of its stdout pipe (blocking)
  UniqueFd err;     // read end of its stderr pipe (blocking)
  // Its channel's shared-memory slots (cow_mailbox.h); invalid when the
  // zygote could not make them, and the channel is then the socket alone.
  UniqueFd mailbox;
};

// The worker's handle on its zygote. Thread-safe: Fork calls are
// serialised. Destroying it stops the zygote and reaps it.
class Zygote {
 public:
  ~Zygote();
  Zygote(const Zygote&) = delete;
  Zygote& operator=(const Zygote&) = delete;

  pid_t pid() const { return pid_; }
  // The functions cow processes can run, sorted.
  const std::vector<std::string>& functions() const { return functions_; }

  // Forks one pool process for `spec` (its env and cwd apply). Blocks for
  // the zygote's answer (normally well under a millisecond; at most 10 s).
  // kFailedPrecondition once the zygote is gone or stopped answering (the
  // message says which), kInvalidArgument for a bad cwd, kIoError when the
  // fork itself failed.
  Result<CowProcess> Fork(const PoolSpec& spec);

  // Loads plugins (a job's `plugins:`) into the zygote, in order, so that
  // processes forked from now on have their functions; processes forked
  // earlier do not. A relative path is resolved against the worker's
  // working directory at StartZygote. Loading a path again is a no-op. On
  // failure the loader's message (it names the file); plugins before the
  // failing one stay loaded. Blocks like Fork.
  Status LoadPlugins(const std::vector<std::string>& paths);

  // Closes the control socket, waits up to 2 s for the zygote to exit
  // (then SIGKILL) and reaps it. Idempotent. Its children keep running.
  void Stop();

 private:
  friend Result<std::shared_ptr<Zygote>> StartZygote(ZygoteOptions options);
  Zygote(pid_t pid, UniqueFd pidfd, UniqueFd control, std::vector<std::string> functions);
  // mu_ held: one request and its answer. Marks the zygote broken when it
  // cannot be trusted any more.
  Status Ask(const std::string& request, std::string* answer, std::vector<UniqueFd>* fds);

  const pid_t pid_;
  const std::vector<std::string> functions_;
  std::mutex mu_;
  UniqueFd pidfd_;    // guarded by mu_
  UniqueFd control_;  // guarded by mu_
  std::string broken_;  // guarded by mu_: why Fork can no longer work
  bool reaped_ = false; // guarded by mu_
};

// Forks the zygote. Call it from the main thread while the process has no
// other thread (kFailedPrecondition otherwise: fork() would copy locks held
// by threads that do not exist in the child). Waits until the zygote has
// loaded its functions; a plugin that fails to load fails the call with
// the loader's message. Stdio buffers are flushed first, so the zygote and
// its children do not inherit (and later print) unwritten output.
Result<std::shared_ptr<Zygote>> StartZygote(ZygoteOptions options = {});

}  // namespace drover

#endif  // DROVER_BACKENDS_FORK_ZYGOTE_H_
