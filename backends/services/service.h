// Service: N supervised instances of one server program sharing one port.
//
// What Node's `cluster` module does for one Node program, a Service does for
// any server: it owns the listening socket(s), starts `instances` copies of
// `command`, hands each its socket the systemd way (LISTEN_FDS=1,
// LISTEN_PID=<its pid>, the socket on fd 3), respawns crashed instances
// (with exponential backoff when they crash-loop), replaces them one at a
// time on Reload() without refusing a request, and stops them with SIGTERM,
// a grace period and SIGKILL.
//
// Modes (docs/backends/cluster.md says when to pick each):
//   kReuseport  one SO_REUSEPORT socket per instance on the same port; the
//               kernel spreads connections by 4-tuple hash. The default.
//   kShared     one listening socket inherited by every instance; whichever
//               instance accepts first gets the connection.
//   kRoundRobin the supervisor accepts every connection and passes it to the
//               next ready instance over a Unix socket with SCM_RIGHTS
//               (include/drover/handoff.h). Instances see
//               DROVER_HANDOFF_FD=3 instead of LISTEN_FDS.
//
// Thread-safety: every public method may be called from any thread. The
// supervisor runs on its own thread (a pidfd + epoll reactor).
#ifndef DROVER_BACKENDS_SERVICES_SERVICE_H_
#define DROVER_BACKENDS_SERVICES_SERVICE_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/clock.h"
#include "core/base/status.h"

namespace drover {
class Guardian;  // backends/process/guardian.h
}  // namespace drover

namespace drover::services {

enum class ListenMode { kReuseport, kShared, kRoundRobin };

// "reuseport", "shared", "round-robin".
std::string_view ListenModeName(ListenMode mode);
// Parses the spelling above; InvalidArgument names the accepted values.
Result<ListenMode> ParseListenMode(std::string_view text);

// How the supervisor decides that an instance serves. Checked per instance
// where the mode allows it: in round-robin mode the supervisor connects to
// the instance through a private hand-off; in reuseport and shared modes a
// connect to the shared port reaches *some* instance, so an instance counts
// as ready once it is alive and a check against the port succeeds after it
// started.
struct ReadyCheck {
  enum class Kind { kTcp, kHttp };
  Kind kind = Kind::kTcp;
  std::string http_path = "/";  // kHttp: GET this path, expect 2xx
  Duration timeout = std::chrono::seconds(30);  // per instance start
};

struct ServiceSpec {
  std::string name;
  std::vector<std::string> command;  // argv; command[0] is looked up in PATH
  int instances = 1;
  std::string host = "127.0.0.1";
  int port = 0;  // 0 picks a free port; Service::port() tells which
  ListenMode mode = ListenMode::kReuseport;
  ReadyCheck ready;
  // Added to (or overriding) the supervisor's environment.
  std::vector<std::pair<std::string, std::string>> env;
  std::filesystem::path cwd;  // empty: the supervisor's
  // Where the instances' stdout and stderr are appended (created if
  // missing). Empty: stdout goes to /dev/null and stderr is only kept as a
  // tail for error messages.
  std::filesystem::path log_path;
  // Reload: how long an old instance keeps running after SIGTERM before it
  // gets SIGKILL (it should finish its in-flight requests and exit).
  Duration drain = std::chrono::seconds(5);
  // Shutdown/respawn: SIGTERM, then this long, then SIGKILL.
  Duration kill_grace = std::chrono::seconds(5);
  // Crash-loop backoff: the first respawn is immediate; an instance that
  // dies again within `backoff_reset` of its start waits backoff_initial,
  // doubling up to backoff_max.
  Duration backoff_initial = std::chrono::milliseconds(100);
  Duration backoff_max = std::chrono::seconds(10);
  Duration backoff_reset = std::chrono::seconds(10);
};

struct InstanceStats {
  int slot = 0;           // 0..instances-1, stable across respawns
  pid_t pid = 0;          // 0 while waiting to be respawned
  uint64_t restarts = 0;  // respawns of this slot after a crash
  // Round-robin: connections handed off to this slot. Other modes: 0 (the
  // kernel distributes; the supervisor does not see connections).
  uint64_t connections = 0;
  bool ready = false;
  std::string last_exit;  // "exit 1", "signal 9 (Killed)", or empty
};

class Service {
 public:
  // Binds the socket(s), spawns the instances and returns at once; the
  // instances become ready in the background (see WaitReady). Errors: a bad
  // spec (empty command, instances < 1, bad host), a bind failure naming
  // host:port and the reason. With a `guardian`, each instance's process
  // group is watched by it, so that instances die with the worker even
  // when it is killed -9 (backends/process/guardian.h).
  static Result<std::unique_ptr<Service>> Start(
      ServiceSpec spec, const Clock& clock, std::shared_ptr<Guardian> guardian = nullptr);

  virtual ~Service() = default;  // a live Service is shut down with kill_grace

  virtual const std::string& name() const = 0;
  // The bound port (port 0 resolved).
  virtual int port() const = 0;
  // Blocks until every instance is ready, or returns a clear error: an
  // instance that exited before becoming ready (its exit status and the tail
  // of its stderr), or one that never became ready within `timeout` (which
  // check failed, with what). Once the service has failed this way the same
  // error is returned at once.
  virtual Status WaitReady(Duration timeout) = 0;
  // Rolling replacement, one instance at a time: start the new one, wait
  // until it is ready, then SIGTERM the old one and give it `drain`. No
  // connection is refused meanwhile. Blocks until done or failed (a new
  // instance that never becomes ready is killed and the old one kept).
  virtual Status Reload() = 0;
  // Reload() with a changed spec (a worker's configuration re-read on
  // SIGHUP): `next` may change command, env, cwd, log_path, ready,
  // instances, drain, kill_grace and the backoff. Its name, host and mode
  // must be the running service's, and its port too unless it is 0 (keep
  // the bound one): the sockets stay, so clients never see the port close.
  // Otherwise InvalidArgument and nothing changes. Slots are replaced one
  // at a time as in Reload(); slots added are started and waited for;
  // slots removed are retired (SIGTERM, `drain`) last, and Reload returns
  // once they have exited (reuseport: their sockets leave the kernel's
  // group only then; see docs/backends/cluster.md). On success spec()
  // is `next`; on a failure the error says how far it got, and the slots
  // not yet replaced keep running the old spec.
  virtual Status Reload(const ServiceSpec& next) = 0;
  // The spec the service runs now (port resolved).
  virtual ServiceSpec spec() const = 0;
  // SIGTERM every instance, wait up to `grace`, SIGKILL the rest, reap all,
  // close the sockets. Idempotent; later calls return at once.
  virtual void Shutdown(Duration grace) = 0;
  virtual std::vector<InstanceStats> Instances() const = 0;
  // "hello: 2 instances of `drover serve hello` on 127.0.0.1:8080
  // (reuseport), 2 ready, 1 restart": for errors and `drover workers`.
  virtual std::string Describe() const = 0;
};

}  // namespace drover::services

#endif  // DROVER_BACKENDS_SERVICES_SERVICE_H_
