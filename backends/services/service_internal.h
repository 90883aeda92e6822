// The service supervisor's internals, shared by its three source files:
//   service.cc          the public API: Start, WaitReady, Shutdown, stats
//   service_reactor.cc  the reactor thread: spawning, ready checkers, exits
//                       and respawns, timers, round-robin routing
//   service_reload.cc   Reload: rolling replacement, growing and shrinking
//
// Locking: mu_ guards all mutable state. The reactor holds it while it
// handles a batch of events; the public methods hold it except while they
// wait on cv_. Checker threads take it to post a result, so nobody joins a
// checker while holding mu_ (finished instances are joined by the reactor
// after it lets go of the lock). reload_mu_ makes reloads one at a time,
// and only a reload (or Init) changes the number of slots.
#ifndef DROVER_BACKENDS_SERVICES_SERVICE_INTERNAL_H_
#define DROVER_BACKENDS_SERVICES_SERVICE_INTERNAL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backends/services/listen_socket.h"
#include "backends/services/probe.h"
#include "backends/services/service.h"
#include "backends/process/unique_fd.h"

namespace drover::services::internal {

constexpr uint64_t kWakeToken = 0;
constexpr uint64_t kListenToken = 1;
enum : uint64_t { kPidfdKind = 1, kErrKind = 2, kChannelKind = 3 };
constexpr size_t kStderrTail = 2048;
constexpr int kMaxAcceptsPerWake = 64;

inline uint64_t Token(uint64_t id, uint64_t kind) { return id << 2 | kind; }

// The end of an instance's stderr, trimmed, for error messages.
std::string Tail(const std::string& text);
// argv joined with spaces, for Describe.
std::string CommandText(const std::vector<std::string>& command);

// One version of the spec, as the instances started from it run it (a
// reload makes a new one; slots not yet replaced keep theirs).
struct Generation {
  ServiceSpec spec;              // port resolved
  std::shared_ptr<UniqueFd> log;  // spec.log_path opened, or an invalid fd
};

struct Instance {
  uint64_t id = 0;
  int slot = 0;
  std::shared_ptr<const Generation> gen;  // set before the checker starts
  pid_t pid = 0;
  UniqueFd pidfd;
  UniqueFd err;
  UniqueFd channel;  // round-robin: our end of the hand-off channel
  // Round-robin: a copy of the instance's own end of the channel. It keeps
  // the connections passed to the instance but never read by it from dying
  // with it (the kernel releases a dying process's accepted connections
  // before its channel, so a client can reconnect and be passed to it
  // before anyone can tell); OnExitLocked passes them to other instances.
  // Never read while the instance runs.
  UniqueFd their_end;
  SteadyTime started{};
  bool ready = false;
  bool gave_up = false;  // the checker ran out of time; check_error says why
  bool retiring = false;
  bool exited = false;
  std::string exit_text;
  std::optional<SteadyTime> kill_at;
  std::string err_tail;
  std::string check_error;
  std::atomic<bool> stop_check{false};
  std::thread checker;

  ~Instance() {
    stop_check = true;
    if (checker.joinable()) checker.join();
  }
};

struct Slot {
  UniqueFd listen;  // reuseport: this slot's own socket
  std::shared_ptr<const Generation> gen;  // what a respawn in this slot runs
  std::shared_ptr<Instance> current;
  std::shared_ptr<Instance> incoming;  // Reload: the replacement, until ready
  // Added by a reload that has not finished: not counted, not routed to,
  // until its first instance is ready.
  bool joining = false;
  uint64_t restarts = 0;
  uint64_t connections = 0;
  int fast_exits = 0;
  bool ever_ready = false;
  std::optional<SteadyTime> respawn_at;
  std::string last_exit;
};

class ServiceImpl final : public Service {
 public:
  ServiceImpl(ServiceSpec spec, const Clock& clock, std::shared_ptr<Guardian> guardian);
  ~ServiceImpl() override;

  Status Init();
  const std::string& name() const override { return name_; }
  int port() const override { return port_; }
  Status WaitReady(Duration timeout) override;
  Status Reload() override;
  Status Reload(const ServiceSpec& next) override;
  ServiceSpec spec() const override;
  void Shutdown(Duration grace) override;
  std::vector<InstanceStats> Instances() const override;
  std::string Describe() const override;

 private:
  // All of these run with mu_ held (`lock` is that hold, for those that
  // wait on cv_).
  Result<std::shared_ptr<Instance>> SpawnLocked(int slot,
                                                const std::shared_ptr<const Generation>& gen);
  void RetireLocked(const std::shared_ptr<Instance>& instance, Duration drain);
  bool AllReadyLocked() const;
  std::string DescribeLocked() const;
  std::string InstanceName(const Instance& instance) const;
  void OnExitLocked(const std::shared_ptr<Instance>& instance);
  bool HasExitedLocked(const Instance& instance) const;
  // Round-robin: takes back the connections an exited instance never read.
  void RescueLocked(Instance& instance);
  void ReadStderrLocked(Instance& instance);
  void AcceptLocked();
  void FlushPendingLocked();
  bool RouteLocked(int conn);
  void UpdateInterestLocked();
  void TimersLocked(SteadyTime now);
  void CloseLocked(UniqueFd& fd);
  void Wake();
  // Before the reactor runs (or after a failed Init): SIGKILL and reap
  // every instance at once. Returns them, to be destroyed outside mu_.
  std::vector<std::shared_ptr<Instance>> KillAllNowLocked();

  // Hands `instances` to the reactor, which destroys them outside mu_ (an
  // Instance joins its checker, which may be waiting for mu_).
  void DropLocked(std::vector<std::shared_ptr<Instance>>& instances);

  // Reload's steps (service_reload.cc).
  Status CheckReloadable(const ServiceSpec& next) const;
  Result<std::shared_ptr<const Generation>> NewGeneration(const ServiceSpec& next);
  Status GrowLocked(std::unique_lock<std::mutex>& lock,
                    const std::shared_ptr<const Generation>& gen, size_t count);
  Status ReplaceLocked(std::unique_lock<std::mutex>& lock, size_t index,
                       const std::shared_ptr<const Generation>& gen);
  void ShrinkLocked(std::unique_lock<std::mutex>& lock, size_t count, Duration drain);
  // Reuseport: makes the kernel pick only among the first `count` slots'
  // sockets for new connections (a reuseport BPF program), or hash over
  // all of them again (count 0).
  void SteerLocked(size_t count);
  // Blocks (with mu_ released) until the listen queues of slots >= `from`
  // are empty, or `deadline`.
  void WaitQueuesEmptyLocked(std::unique_lock<std::mutex>& lock, size_t from,
                             std::chrono::steady_clock::time_point deadline);
  // Blocks until every one of `instances` exited (the reactor SIGKILLs
  // them at their kill_at, so this is bounded) or the service stops.
  void WaitExitedLocked(std::unique_lock<std::mutex>& lock,
                        const std::vector<std::shared_ptr<Instance>>& instances);

  void RunReactor();
  void RunChecker(Instance* instance, ProbeTarget target, UniqueFd channel);

  // Never change after construction, so read without mu_.
  const std::string name_;
  const std::string host_;
  const ListenMode mode_;
  const Clock& clock_;
  // Told of each instance's group after launch and before its reap.
  const std::shared_ptr<Guardian> guardian_;
  // Set by Init, before any other thread runs; constant after.
  SocketAddress address_;
  int port_ = 0;
  UniqueFd shared_listen_;  // shared and round-robin modes
  UniqueFd epoll_;
  UniqueFd wake_;
  std::thread reactor_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const Generation> gen_;                  // spec(); guarded by mu_
  std::vector<Slot> slots_;                                // guarded by mu_
  std::map<uint64_t, std::shared_ptr<Instance>> running_;  // by id; guarded by mu_
  std::vector<std::shared_ptr<Instance>> finished_;        // to join; guarded by mu_
  std::deque<int> pending_;                                // round-robin; guarded by mu_
  size_t rr_next_ = 0;                                     // guarded by mu_
  uint64_t next_id_ = 1;                                   // guarded by mu_
  std::optional<Status> failure_;                          // guarded by mu_
  bool stopping_ = false;                                  // guarded by mu_
  bool reactor_done_ = false;                              // guarded by mu_
  bool listen_paused_ = false;                             // guarded by mu_
  std::mutex reload_mu_;  // one Reload at a time
  std::once_flag shutdown_once_;
};

}  // namespace drover::services::internal

#endif  // DROVER_BACKENDS_SERVICES_SERVICE_INTERNAL_H_
