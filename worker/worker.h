// Worker: connects to a coordinator, registers its backends' slots, runs the
// attempts it is dispatched, and reports their results (docs/protocol.md).
//
// One I/O thread (Run) owns the DEALER socket and talks to the coordinator;
// it heartbeats from that loop whether or not tasks run. Backends run
// attempts on their own threads and hand completions (and other messages
// for the coordinator, such as SERVICE-RELOADED) back through queues and
// an eventfd. Every RESULT is kept until the coordinator ACKs it and is
// resent after a re-registration, so no result is lost to a reconnect.
#ifndef DROVER_WORKER_WORKER_H_
#define DROVER_WORKER_WORKER_H_

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "backends/backend.h"
#include "core/base/clock.h"
#include "core/base/status.h"
#include "core/spec/job_spec.h"

namespace drover {
namespace artifacts {
class LocalFiles;
}  // namespace artifacts

struct WorkerOptions {
  std::string coordinator;                  // endpoint to connect to
  std::string name;                         // empty: HOSTNAME-PID
  std::map<std::string, int> slots;         // backend -> slots
  // Slots each backend takes beyond its own (Hello.prefetch): the
  // coordinator may dispatch that many more, which wait in the worker, in
  // dispatch order, and start the moment a slot frees, instead of after a
  // round trip to the coordinator. 0: none; kPrefetchDefault: 4 times
  // each backend's slots (`drover worker`'s default), of which the
  // coordinator uses more than the slots only while the backend's tasks
  // are short (core/coordinator/prefetch_grant.h). A waiting attempt
  // counts as running at the coordinator; on a drain or a stop it goes
  // back (worker-lost) to be placed again, and the worker reports its start
  // (Hello.reports_starts) so that one lost with the worker costs no retry.
  int prefetch = 0;
  static constexpr int kPrefetchDefault = -1;
  static constexpr uint32_t kDefaultPrefetchPerSlot = 4;
  std::map<std::string, std::string> labels;
  // Where backends write captured output before it is sent with the RESULT.
  std::filesystem::path spool_dir = ".drover/spool";
  Duration heartbeat_interval = std::chrono::seconds(1);
  int liveness = 5;  // intervals without a word from the coordinator
  Duration reconnect_min = std::chrono::seconds(1);
  Duration reconnect_max = std::chrono::seconds(32);
  // How long Run() waits for running attempts after Stop() before it kills
  // them.
  Duration shutdown_grace = std::chrono::seconds(5);
  // The zygote `cow` fork pools fork from; started by main before any
  // thread (backends/fork/zygote.h). Null: cow pools fail their tasks.
  std::shared_ptr<Zygote> zygote;
  // The guardian that kills this worker's tasks when the worker dies, even
  // by SIGKILL (backends/process/guardian.h); started by main before any
  // thread, after the zygote. Null: tasks outlive a worker that is killed.
  std::shared_ptr<Guardian> guardian;
  // Called on every new DEALER socket before it connects (CURVE client
  // keys). An error is logged and the connection retried with backoff.
  std::function<Status(zmq::socket_t&)> configure_socket;
  // Pools declared by the worker's configuration (core/spec/worker_config.h),
  // by name: a fork task naming one of them runs on it when its job does not
  // declare that pool itself (the job's declaration wins). Given to the
  // backends (BackendConfig::pools).
  std::map<std::string, spec::PoolDecl> pools;
  // Services declared by the worker's configuration (`services:`, in
  // docs/operations.md): started by Start() and waited for, kept until the
  // worker stops, offered in HELLO. A task of any backend uses one when its
  // job names it `from: worker` (Dispatch.worker_services).
  std::vector<spec::ServiceDecl> services;
  // The configuration file they come from. UpdateServices may bring
  // services later (SIGHUP).
  std::string services_file;
  // Plugins of the worker's configuration, loaded by every backend that
  // runs functions (threads) at Start().
  std::vector<std::filesystem::path> plugins;
  // `drover run` only: the coordinator in this process shares its disk;
  // artifacts are linked between its store and this worker instead of
  // copied in chunks (core/artifacts/local_files.h). Null: over the wire.
  std::shared_ptr<artifacts::LocalFiles> local_artifacts;
  // During a drain, how long Run() waits for the coordinator to ACK the
  // last results before it says goodbye anyway.
  Duration drain_ack_timeout = std::chrono::seconds(5);
};

// The largest captured stream a RESULT carries (the tail is kept). Keeps
// every RESULT under the protocol's 64 MiB message limit.
inline constexpr uint64_t kMaxResultStream = 16ull << 20;

class Worker {
 public:
  Worker(zmq::context_t& context, WorkerOptions options, const BackendRegistry& registry,
         const Clock& clock);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Creates and starts a backend per entry of options.slots and the
  // worker's services (backends/services/service_host.h), then starts the
  // worker's own services (options.services) and waits until they are
  // ready. On failure no backend or service is left
  // running, and the error names what failed.
  Status Start();
  // The I/O loop: connect, HELLO, then serve until Stop(). Before returning
  // it shuts the backends down (running attempts are cancelled after
  // shutdown_grace), sends their results and a DISCONNECT.
  Status Run();
  // Makes Run() return. Thread-safe.
  void Stop();
  // The configuration was re-read (SIGHUP): brings the worker's own
  // services to `next` (services::ServiceRegistry::UpdateWorkerServices:
  // unchanged ones stay, changed ones are reloaded, new ones start,
  // removed ones stop), then has Run() send HELLO again with the new list.
  // Blocks while services start or reload: call it from a thread other
  // than Run()'s. Returns one error per service it could not change.
  std::vector<Status> UpdateServices(const std::vector<spec::ServiceDecl>& next);
  // The worker's own services that run now, by name.
  std::vector<std::string> ServiceNames() const;
  // Starts a drain (SIGTERM): Run() sends DRAINING so no new attempt comes,
  // lets running attempts finish for up to `timeout`, cancels the rest,
  // sends their RESULTs, waits up to drain_ack_timeout for their ACKs, then
  // sends DISCONNECT (drained = true) and returns. A later Stop() still
  // stops at once. Thread-safe; a second call is ignored.
  void Drain(Duration timeout);

  const std::string& name() const;
  // The worker's metrics in the Prometheus text format (worker_metrics.h):
  // slots, busy slots, attempts by outcome, spool size. Thread-safe; walks
  // the spool directory.
  std::string MetricsText() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace drover

#endif  // DROVER_WORKER_WORKER_H_
