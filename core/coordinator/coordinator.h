// Coordinator: accepts jobs from clients, keeps their state in the Store,
// and dispatches their tasks to workers over the drover protocol
// (docs/protocol.md).
//
// The coordinator is one poll loop on one thread. That thread owns the
// ROUTER socket every worker and client connects to, the Store, and every
// job's Plan. `drover run` runs it on an inproc:// endpoint next to an
// embedded worker; `drover coordinator` runs the same loop on tcp://.
//
// One loop turn:
//   1. wait for a message, a timer (heartbeat, liveness, retry) or Stop();
//   2. in one store transaction: handle every queued message, expire dead
//      workers, promote retries, and place ready tasks on free slots;
//   3. commit; only then send the turn's ACKs, DISPATCHes and events.
// So a result is ACKed only once it is durable, and a worker never runs an
// attempt the store does not know.
#ifndef DROVER_CORE_COORDINATOR_COORDINATOR_H_
#define DROVER_CORE_COORDINATOR_COORDINATOR_H_

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "core/base/clock.h"
#include "core/base/status.h"
#include "core/spec/job_spec.h"

namespace drover {
namespace artifacts {
class LocalFiles;
}  // namespace artifacts

struct CoordinatorOptions {
  // Endpoints to bind, e.g. "inproc://drover" or "tcp://127.0.0.1:7700".
  std::vector<std::string> endpoints;
  std::filesystem::path state_dir = ".drover";
  Duration heartbeat_interval = std::chrono::seconds(1);
  int liveness = 5;  // heartbeat intervals of silence before a worker is dead
  spec::LoadOptions spec_options;
  // Seeds the retry jitter of every job (tests pin it); 0 = random.
  uint64_t jitter_seed = 0;
  // Called on the ROUTER socket before it binds (CURVE server keys, ZAP
  // domain). An error fails Open().
  std::function<Status(zmq::socket_t&)> configure_socket;
  // Runs on the spec loader's thread before each SUBMIT's spec that is
  // loaded there (core/coordinator/spec_loader.h); tests hold a load with
  // it. Unset: nothing.
  std::function<void()> before_spec_load;
  // Runs on the store reader's thread before each read it answers
  // (core/coordinator/store_reader.h); tests hold a read with it. Unset:
  // nothing.
  std::function<void()> before_store_read;
  // Runs there after each read, before its answer is handed to the loop;
  // tests hold an answer with it. Unset: nothing.
  std::function<void()> after_store_read;
  // What Open() does with jobs a previous coordinator left running in the
  // store. true (`drover coordinator`): keep running them; their running
  // attempts wait heartbeat_interval * liveness for their workers to
  // register again and claim them (docs/protocol.md, "Coordinator
  // restart"). false (the coordinator embedded in `drover run`, whose
  // worker died with it): mark them interrupted, so that `--resume`
  // re-runs what did not finish.
  bool recover_jobs = true;
  // How long a client's SERVICE-RELOAD waits for its workers' answers
  // before it is answered with the rest listed as missing. A reload waits
  // for every new instance to be ready, one at a time, so this is long.
  Duration reload_timeout = std::chrono::minutes(10);
  // SERVICE-RELOADs waiting for answers at most; more are refused.
  size_t max_pending_reloads = 1024;
  // Bytes that may wait in ZeroMQ's queues for one peer (the messages sent
  // to it that it has not read, counted as protocol::CountedBytes). A
  // message that would pass it is not sent and the peer is dropped
  // (docs/protocol.md, "Outbound budget"); a message to a peer with nothing
  // queued always goes, so one reply of any size the protocol allows
  // reaches a client that reads.
  size_t peer_send_budget = 32u << 20;
  // Bytes of <state_dir>/reserve, a file given back to the store when a
  // commit finds the state disk full, so that the failures can still be
  // recorded (docs/operations.md, "When the state disk is full"). 0: none.
  uint64_t state_reserve = 4u << 20;
  // `drover coordinator --pipelines DIR`: the directory of scheduled
  // pipelines (core/coordinator/pipelines.h) run on their `schedule:`;
  // empty: none. A bad spec in it is logged and skipped, never fatal.
  std::filesystem::path pipelines_dir;
  // `drover run` only: the embedded worker lists the files it uploads
  // there, and an ARTIFACT-PUT of a listed file is answered by linking the
  // file into the store (no chunks; core/artifacts/local_files.h). Null:
  // every upload comes in chunks.
  std::shared_ptr<artifacts::LocalFiles> local_artifacts;
  // The longest the loop waits after a turn, its socket unread, to
  // gather more results for the next while every worker holding attempts
  // has more waiting for its slots (core/coordinator/turn_hold.h;
  // docs/operations.md, "Turns held for more results"). 0: never.
  Duration max_turn_hold = std::chrono::milliseconds(5);
};

// Counters of what the loop dropped or ignored; readable from any thread.
struct CoordinatorStats {
  std::atomic<uint64_t> malformed{0};       // messages that failed to decode
  std::atomic<uint64_t> stale_results{0};   // results for non-current attempts
  std::atomic<uint64_t> results{0};         // results recorded
  std::atomic<uint64_t> dispatched{0};
  std::atomic<uint64_t> workers_lost{0};
  std::atomic<uint64_t> recovered_jobs{0};     // jobs kept running by Open()
  std::atomic<uint64_t> claimed_attempts{0};   // recovered attempts re-claimed
  std::atomic<uint64_t> outputs{0};            // OUTPUT chunks received
  std::atomic<uint64_t> peers_dropped{0};      // peers over their send budget
  std::atomic<uint64_t> unsent{0};             // messages not sent to a dropped peer
  std::atomic<uint64_t> ignored{0};            // messages of a dropped peer, ignored
  std::atomic<uint64_t> log_lines_suppressed{0};  // by the per-peer log limit
  std::atomic<uint64_t> unauthorized{0};       // refused: outside the key's role
  std::atomic<uint64_t> recalled{0};           // Cancel.recall sent (placement.cc)
  std::atomic<uint64_t> turns_held{0};         // waited to gather results (turn_hold.h)
  std::atomic<uint64_t> reads_answered{0};     // by the store reader (reads.cc)
};

class Coordinator {
 public:
  Coordinator(zmq::context_t& context, CoordinatorOptions options, const Clock& clock);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Opens the store and binds every endpoint. On failure nothing is bound.
  // Jobs that a previous coordinator left running in the store are
  // recovered or marked interrupted, as options.recover_jobs says.
  Status Open();
  // The bound endpoints, with tcp port 0 replaced by the port chosen.
  std::vector<std::string> endpoints() const;

  // Runs the loop until Stop(). Call from one thread, after Open().
  Status Run();
  // Makes Run() return after its current turn. Thread-safe.
  void Stop();
  // Makes the loop take a turn now (re-reading the clock). Thread-safe; for
  // tests that advance a FakeClock.
  void Poke();
  // Makes the loop re-read options.pipelines_dir at its next turn (SIGHUP):
  // new, changed and removed pipelines are applied; a pipeline whose file
  // no longer loads keeps its previous version. Thread-safe.
  void ReloadPipelines();
  // For a process that runs its own coordinator and has loaded the job's
  // spec already (drover run): hands that spec over, so that the SUBMIT of
  // exactly `text` from `file` takes it instead of loading the text again
  // (yaml-cpp takes about a second for a million matrix values, and the
  // job waits for it; docs/benchmarks.md). `spec` must be what
  // spec::LoadString(text, file, options.spec_options) gives. At most one
  // is held, until that SUBMIT; another HandOver replaces it. Thread-safe.
  void HandOver(std::string file, std::string text, spec::JobSpec spec);

  const CoordinatorStats& stats() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_COORDINATOR_H_
