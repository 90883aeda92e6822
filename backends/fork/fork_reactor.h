// The fork backend's reactor: one thread that owns every pool, process,
// descriptor and timer of a ForkBackend (fork_backend.h has the contract).
// Private to backends/fork.
//
// Each turn of the loop waits in epoll on an eventfd (commands from other
// threads), and per process on its pidfd, its IPC channel and its stdout
// and stderr pipes, with the timeout set to the nearest timer: a task's
// timeout, an idle timeout, a kill grace, or the end of a crash-loop
// backoff, on the backend's Clock (a FakeClock's Advance wakes it).
// Launching, the process group and the TERM -> grace -> KILL stop are
// backends/process's. Within a turn, output is read before replies and replies before
// exits, so that what a process printed before replying belongs to the
// task, and a reply written just before exiting still counts.
//
// Driven (Start's `driven`, what the worker asks for: backend.h), the
// reactor has no thread: its owner waits on PollFd() with descriptors of
// its own, for at most PollTimeoutMs(), and calls Poll() for one turn, so a
// reply goes from the pool process to the worker's loop with no hand-off
// between threads.
//
// fork_reactor.cc holds the loop, commands and pools; fork_stops.cc the
// timers, Cancel and Shutdown; pool_process.cc the life of one process
// (start, message, reply, stop, reap).
#ifndef DROVER_BACKENDS_FORK_FORK_REACTOR_H_
#define DROVER_BACKENDS_FORK_FORK_REACTOR_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/fork/cow_mailbox.h"
#include "backends/fork/fork_attempt.h"
#include "backends/fork/ipc_channel.h"
#include "backends/fork/zygote.h"
#include "backends/process/adaptive_spin.h"
#include "backends/process/child_launcher.h"
#include "backends/process/deadline_set.h"
#include "backends/process/group_stop.h"
#include "backends/process/guardian.h"
#include "backends/process/output_capture.h"
#include "backends/process/reactor_mailbox.h"
#include "backends/process/unique_fd.h"

namespace drover {

class ForkReactor {
 public:
  // `clock` must outlive the reactor.
  ForkReactor(int slots, std::shared_ptr<Zygote> zygote, const Clock& clock,
              std::shared_ptr<Guardian> guardian = nullptr);
  ~ForkReactor() = default;  // the owner has called Shutdown (joined)

  ForkReactor(const ForkReactor&) = delete;
  ForkReactor& operator=(const ForkReactor&) = delete;

  // `driven`: no thread of its own; the owner calls Poll (above).
  Status Start(BackendEvents* events, bool driven = false);
  Status Submit(ForkAttempt attempt) { return mailbox_.Submit(std::move(attempt)); }
  void Cancel(uint64_t attempt_id) { mailbox_.Cancel(attempt_id); }
  // Driven, the last turns (the grace, the kills, the reports) run on the
  // calling thread.
  void Shutdown(Duration grace);

  // Driven mode, on the owner's thread: the descriptor to wait on (-1 when
  // not driven), one turn that waits for nothing, and how long the owner
  // may wait before the next (-1: until PollFd is readable).
  int PollFd() const { return driven_ ? mailbox_.epoll_fd() : -1; }
  void Poll();
  int PollTimeoutMs() const;
  // How long the owner should look for PollFd() to be readable before it
  // blocks on it: a reply is awaited and the recent ones came that soon
  // (Backend::SpinBeforeWait, backends/process/adaptive_spin.h); what is
  // left of the budget since the last message went out. Zero when no reply
  // is awaited.
  AdaptiveSpin::Duration SpinBeforeWait() const;
  // The spin before a wait starts or ends (Backend::Spinning): while it
  // lasts, cow processes whose reply is awaited post it without ringing.
  void Spinning(bool on);

 private:
  using Mailbox = ReactorMailbox<ForkAttempt>;
  using Command = Mailbox::Command;

  // epoll tokens: a process's descriptors are serial << 2 | kind; token 0
  // (serial 0 is never a process's) is the eventfd.
  enum FdKind : uint64_t { kPidfd = 0, kChannel = 1, kOut = 2, kErr = 3 };
  static uint64_t Token(uint64_t serial, FdKind kind) { return serial << 2 | kind; }
  static constexpr uint64_t kWakeToken = Mailbox::kWakeToken;

  // Why the backend is stopping a process. Every kind but kChannelLost
  // detaches it from its slot at once, so a replacement can start while
  // it is still on its way out.
  enum class StopKind {
    kNone,
    kChannelLost,  // its channel closed or broke: it should be exiting
    kOversize,     // it replied past the cap: the channel is out of step
    kTimeout,
    kCancel,
    kShutdown,
    kRetire,       // max_tasks, idle_timeout, a superseded pool, shutdown
  };

  // An attempt held by a process.
  struct Running {
    explicit Running(ForkAttempt a);
    ForkAttempt attempt;
    OutputCapture out;
    OutputCapture err;
    bool keep_out;  // the attempt has a stdout path (else output is dropped)
    bool keep_err;
    SteadyTime started;
    // When its message was handed to the channel, on the real clock: how
    // soon the reply came tells the reactor whether to spin (spin_).
    std::chrono::steady_clock::time_point sent;
    std::string head;       // cow: {"fn":"NAME","args":
    std::string body_copy;  // the payload with its newlines made spaces
    FailureReason stop_reason = FailureReason::kNone;  // timeout, cancel, ...
    std::string stop_message;
  };

  // One pool process.
  struct Proc {
    uint64_t serial = 0;
    uint64_t pool_id = 0;
    std::string pool_name;
    bool cow = false;
    int slot = -1;  // index in its pool's slots while attached
    pid_t pid = -1;
    UniqueFd pidfd;
    UniqueFd channel;
    UniqueFd out;
    UniqueFd err;
    // Cow: the channel's shared-memory half (cow_mailbox.h); null without.
    std::unique_ptr<CowMailbox> shared;
    LineReader reader;
    MessageWriter writer;
    bool writing = false;  // a message is partly written: EPOLLOUT is on
    std::unique_ptr<Running> running;
    int tasks = 0;  // tasks it answered
    SteadyTime started;
    StopKind stop = StopKind::kNone;
    GroupStop signals;  // its timer (timeout, idle, grace) is in deadlines_
    bool exited = false;        // being reaped: takes no more work
    std::string note;           // why its channel went away
    uint64_t generation = 0;    // cow: the zygote's plugin generation it has
  };

  // A place for one process in a pool.
  struct Slot {
    uint64_t proc = 0;     // serial of its process, 0 when empty
    bool wanted = true;    // keep a process here (false after idle_timeout)
    int quick_exits = 0;   // quick exits in a row
    std::optional<SteadyTime> restart_at;  // crash-loop backoff
  };

  struct Pool {
    uint64_t id = 0;
    std::string key;  // name#fingerprint
    PoolSpec spec;
    bool cow = false;
    std::vector<Slot> slots;
    std::deque<ForkAttempt> queue;
    bool superseded = false;  // a newer declaration of the name exists
    int procs = 0;            // processes of this pool not reaped yet
  };

  // Reactor thread (or, driven, the owner's): fork_reactor.cc and
  // fork_stops.cc.
  void Run();
  void Loop();
  // One turn: waits up to `timeout_ms` (-1: no limit) in epoll and handles
  // what is ready. Throws when epoll_wait fails.
  void Turn(int timeout_ms);
  bool Done() const { return shutting_down_ && procs_.empty(); }
  // After the loop failed: stops every process and reports every attempt.
  void Fail(const std::string& failure);
  int TimeoutMs(SteadyTime now) const;
  void HandleCommands(bool read_wake);
  void Enqueue(ForkAttempt attempt);
  // What makes `attempt` unfit for a pool of its mode, before it is queued
  // (the message for a launch failure), or Ok. Loads its plugins into the
  // zygote (cow).
  Status CheckAttempt(const ForkAttempt& attempt, bool cow);
  Pool& PoolFor(const PoolSpec& spec);
  void Fill(Pool& pool);
  void Dispatch(Pool& pool);
  void Replenish(uint64_t pool_id);  // Fill + Dispatch, if the pool exists
  void RetireIdle(Pool& pool);
  void FailQueued(Pool& pool, FailureReason reason, const std::string& message);
  void MaybeDropPool(uint64_t pool_id);
  Status EnsureZygotePlugins(const std::vector<std::string>& paths);
  void RetireStale();
  void Expire(SteadyTime now);
  void CancelAttempt(uint64_t attempt_id);
  void BeginShutdown(Duration grace, SteadyTime now);
  void KillRemaining();
  void Report(uint64_t attempt_id, AttemptOutcome outcome);
  Proc* FindProc(uint64_t serial);
  Pool* FindPool(uint64_t id);

  // Reactor thread: pool_process.cc.
  bool SpawnInto(Pool& pool, size_t slot);
  Status StartProcess(const Pool& pool, Proc& proc);
  void Assign(Proc& proc, ForkAttempt attempt);
  void Flush(Proc& proc);
  void OnChannel(Proc& proc, uint32_t events);
  void OnLine(Proc& proc, std::string_view line);
  // Cow processes' replies in shared memory: whether one waits; noting
  // the processes that have one (before a look at epoll); taking the
  // replies of those noted (OnLine each).
  bool SharedWaiting() const;
  void NoteSharedReplies();
  void TakeShared();
  void OnOutput(Proc& proc, bool is_err, int max_reads);
  void Finish(Proc& proc, AttemptOutcome outcome);
  void AfterTask(Proc& proc);
  void ChannelLost(Proc& proc, std::string note);
  void Oversize(Proc& proc);
  void Stop(Proc& proc, StopKind kind, std::string message, Duration grace);
  void Detach(Proc& proc);
  void Reap(Proc& proc);
  void Forget(Proc& proc);
  Status Watch(int fd, uint64_t token, uint32_t events, int op);
  void CloseFd(UniqueFd& fd);

  Mailbox mailbox_;
  const Clock& clock_;
  const std::shared_ptr<Zygote> zygote_;
  // Told each pool process group started and about to be reaped (may be
  // null): backends/process/guardian.h.
  const std::shared_ptr<Guardian> guardian_;
  BackendEvents* events_ = nullptr;  // set by Start, before the thread runs

  // Owned by the reactor thread (Start sets them up before it runs).
  ChildLauncher launcher_;
  std::unique_ptr<char[]> buffer_;  // output reads
  AdaptiveSpin spin_;               // whether a wait with a reply awaited spins first
  // When the last message went to a pool process, on the real clock: a
  // spin looks for a reply within the budget after it, not after every
  // wake-up of the owner while a long task runs.
  std::chrono::steady_clock::time_point last_sent_;
  std::map<uint64_t, std::unique_ptr<Pool>> pools_;        // by id
  std::unordered_map<std::string, uint64_t> pool_by_key_;  // key -> id
  std::unordered_map<std::string, uint64_t> current_pool_; // name -> id
  std::unordered_map<uint64_t, std::unique_ptr<Proc>> procs_;  // by serial
  std::vector<uint64_t> shared_replies_;               // NoteSharedReplies: serials
  std::unordered_map<uint64_t, uint64_t> running_in_;  // attempt id -> serial
  DeadlineSet deadlines_;  // by serial
  std::set<std::tuple<SteadyTime, uint64_t, size_t>> restarts_;  // (when, pool, slot)
  uint64_t next_serial_ = 1;
  uint64_t next_pool_id_ = 1;
  // Job plugins loaded into the zygote, as jobs spell them; each load that
  // added one starts a new generation of cow processes.
  std::set<std::string, std::less<>> zygote_plugins_;
  uint64_t zygote_generation_ = 0;
  bool driven_ = false;  // set by Start
  bool failed_ = false;  // the loop failed: Fail ran
  bool shutting_down_ = false;
  Duration shutdown_grace_{0};
  SteadyTime give_up_at_;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_FORK_FORK_REACTOR_H_
