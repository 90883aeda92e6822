// Worker: connects to a coordinator, registers its backends' slots, runs the
// attempts it is dispatched, and reports their results (docs/protocol.md).
//
// One I/O thread (Run) owns the DEALER socket and talks to the coordinator;
// it heartbeats from that loop whether or not tasks run. Backends run
// attempts on their own threads and hand completions back through a queue
// and an eventfd. Every RESULT is kept until the coordinator ACKs it and is
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

namespace drover {

struct WorkerOptions {
  std::string coordinator;                  // endpoint to connect to
  std::string name;                         // empty: HOSTNAME-PID
  std::map<std::string, int> slots;         // backend -> slots
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
  // Called on every new DEALER socket before it connects (CURVE client
  // keys). An error is logged and the connection retried with backoff.
  std::function<Status(zmq::socket_t&)> configure_socket;
  // Pools declared by the worker's configuration (core/spec/worker_config.h),
  // by name: a fork task naming one of them runs on it when its job does not
  // declare that pool itself (the job's declaration wins).
  std::map<std::string, PoolSpec> pools;
  // Plugins of the worker's configuration, loaded by every backend that
  // runs functions (threads) at Start().
  std::vector<std::filesystem::path> plugins;
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

  // Creates and starts a backend per entry of options.slots. On failure no
  // backend is left running.
  Status Start();
  // The I/O loop: connect, HELLO, then serve until Stop(). Before returning
  // it shuts the backends down (running attempts are cancelled after
  // shutdown_grace), sends their results and a DISCONNECT.
  Status Run();
  // Makes Run() return. Thread-safe.
  void Stop();
  // Starts a drain (SIGTERM): Run() sends DRAINING so no new attempt comes,
  // lets running attempts finish for up to `timeout`, cancels the rest,
  // sends their RESULTs, waits up to drain_ack_timeout for their ACKs, then
  // sends DISCONNECT (drained = true) and returns. A later Stop() still
  // stops at once. Thread-safe; a second call is ignored.
  void Drain(Duration timeout);

  const std::string& name() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace drover

#endif  // DROVER_WORKER_WORKER_H_
