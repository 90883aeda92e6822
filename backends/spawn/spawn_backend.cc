// The spawn backend's reactor: one thread that owns every child, pipe and
// deadline of the backend.
//
// Each turn of the loop waits in epoll on:
//   - the mailbox's eventfd, written by Submit/Cancel/Shutdown after they
//     queue a command (reactor_mailbox.h),
//   - one pidfd per child (readable when the leader exits),
//   - the read ends of each child's stdout/stderr pipes, from kQuietStart
//     after its launch (below),
// with the epoll timeout set to the nearest deadline (a task's timeout or
// the end of its kill grace), on the backend's Clock. Output is read before
// exits are handled, so a child's last bytes are in its files before it is
// reported.
//
// A child's pipes join the epoll set only kQuietStart after its launch.
// Its exit closes both write ends, and each close woke the reactor on its
// own, before the pidfd did: two wake-ups of three for a task that ends
// sooner, which is most short tasks (docs/benchmarks.md, session 23). Its
// output waits in the pipe meanwhile and is drained when it exits; a child
// that fills a pipe (64 KiB) sooner waits for the rest of kQuietStart,
// once. Launching, the process group and the TERM -> grace -> KILL stop are
// backends/process's.
#include "backends/spawn/spawn_backend.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backends/process/child_launcher.h"
#include "backends/process/deadline_set.h"
#include "backends/process/group_stop.h"
#include "backends/process/guardian.h"
#include "backends/process/output_capture.h"
#include "backends/process/process_group.h"
#include "backends/process/reactor_mailbox.h"
#include "backends/process/resource_limits.h"
#include "backends/process/unique_fd.h"

namespace drover {
namespace {

// One read buffer for the whole reactor: memory does not grow with output.
constexpr size_t kReadBufferSize = 64 * 1024;
constexpr int kMaxEvents = 64;
// After the leader exits its pipes are drained with at most this many reads
// each: enough to empty any pipe, bounded so that a writer which escaped the
// process group cannot hold the reactor.
constexpr int kMaxDrainReads = 256;
// How long a child's pipes stay out of the epoll set after its launch (see
// the top of the file). Kept on steady_clock, not the backend's Clock: it
// changes when output is read, never what is captured or when a task ends,
// and a FakeClock that stands still must not leave a pipe unread.
constexpr Duration kQuietStart = std::chrono::milliseconds(2);
// How long the reactor waits for SIGKILLed processes at shutdown (or after
// an internal error) before reporting them and giving up on reaping them.
constexpr Duration kKillWait = std::chrono::seconds(5);

// epoll tokens: 0 is the mailbox's eventfd; a child's fds are
// serial << 2 | kind.
constexpr uint64_t kWakeToken = ReactorMailbox<SpawnAttempt>::kWakeToken;
enum FdKind : uint64_t { kPidfd = 1, kOut = 2, kErr = 3 };
uint64_t Token(uint64_t serial, FdKind kind) { return serial << 2 | kind; }

std::string Seconds(Duration d) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2fs", std::chrono::duration<double>(d).count());
  return buffer;
}

}  // namespace

class SpawnBackend::Reactor {
 public:
  Reactor(int slots, const Clock& clock, std::shared_ptr<Guardian> guardian)
      : mailbox_("spawn", slots, clock), clock_(clock), guardian_(std::move(guardian)) {}
  ~Reactor() = default;  // SpawnBackend's destructor has joined the thread

  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // `driven`: no thread of its own; the owner calls Poll (SpawnBackend's
  // header).
  Status Start(BackendEvents* events, bool driven);
  Status Submit(SpawnAttempt attempt) { return mailbox_.Submit(std::move(attempt)); }
  void Cancel(uint64_t attempt_id) { mailbox_.Cancel(attempt_id); }
  void Shutdown(Duration grace) {
    if (driven_) {
      mailbox_.ShutdownDriven(grace, [this] { Run(); });
    } else {
      mailbox_.Shutdown(grace);
    }
  }
  // Driven mode, on the owner's thread.
  int PollFd() const { return driven_ ? mailbox_.epoll_fd() : -1; }
  void Poll();
  int PollTimeoutMs() const {
    if (!driven_ || failed_) return -1;
    return mailbox_.more() ? 0 : TimeoutMs(clock_.Now());
  }

 private:
  using Mailbox = ReactorMailbox<SpawnAttempt>;
  using Command = Mailbox::Command;

  struct Stream {
    UniqueFd fd;  // read end of the pipe, or none once closed
    OutputCapture capture;
    bool watched = false;  // in the epoll set (WatchOutput)
  };

  struct Child {
    explicit Child(SpawnAttempt a)
        : attempt(std::move(a)),
          out{UniqueFd(), OutputCapture(attempt.stdout_path, attempt.output_limit)},
          err{UniqueFd(), OutputCapture(attempt.stderr_path, attempt.output_limit)} {}

    SpawnAttempt attempt;
    uint64_t serial = 0;
    pid_t pid = -1;
    UniqueFd pidfd;
    Stream out;
    Stream err;
    SteadyTime started;
    GroupStop stop;  // its timer (timeout, then grace) is in deadlines_
    FailureReason stop_reason = FailureReason::kNone;  // timeout / cancel
    std::string stop_message;
  };

  // Reactor thread (or, driven, the owner's).
  void Run();
  void Loop();
  // One turn: waits up to `timeout_ms` (-1: no limit) for events and
  // handles them. False when epoll_wait failed.
  bool Turn(int timeout_ms);
  bool Done() const { return shutting_down_ && children_.empty(); }
  // After the loop failed: stops every attempt and reports each.
  void Fail(std::string failure);
  int TimeoutMs(SteadyTime now) const;
  void HandleCommands(bool read_wake);
  void Launch(SpawnAttempt attempt);
  void ReadStream(Child& child, Stream& stream, int max_reads);
  // Adds the child's pipes to the epoll set; false (errno set) when
  // epoll_ctl fails.
  bool WatchOutput(Child& child);
  // The pipes of children launched kQuietStart ago join the set; what they
  // hold already is read in the next turn (the set is level-triggered).
  void WatchDueOutput();
  void CloseFd(UniqueFd& fd);
  void CloseStream(Stream& stream);
  void Reap(Child& child);
  void Expire(SteadyTime now);
  void Stop(Child& child, FailureReason why, std::string message, SteadyTime now);
  void BeginShutdown(Duration grace, SteadyTime now);
  void KillRemaining(FailureReason reason, const std::string& message,
                     SteadyTime give_up_at);
  void Forget(Child& child);
  void Report(uint64_t attempt_id, AttemptOutcome outcome);
  Child* Find(uint64_t serial);

  Mailbox mailbox_;
  const Clock& clock_;
  // Told each group started and about to be reaped (may be null).
  const std::shared_ptr<Guardian> guardian_;
  BackendEvents* events_ = nullptr;  // set by Start, before the thread runs

  // Owned by the reactor thread (Start sets them up before it runs).
  ChildLauncher launcher_;
  // Whether RLIMIT_NPROC binds our children (not when we run as root).
  const bool nproc_enforced_ = NprocEnforced();
  std::unique_ptr<char[]> buffer_;
  std::unordered_map<uint64_t, std::unique_ptr<Child>> children_;  // by serial
  std::unordered_map<uint64_t, uint64_t> serial_of_;               // attempt id -> serial
  DeadlineSet deadlines_;                                          // by serial
  DeadlineSet watch_at_;  // by serial: when its pipes join the set (steady_clock)
  uint64_t next_serial_ = 1;
  bool driven_ = false;  // set by Start
  bool failed_ = false;  // the loop failed: Fail ran
  bool shutting_down_ = false;
  SteadyTime give_up_at_;  // shutdown: stop waiting for killed children
};

// ---------------------------------------------------------------------------
// Caller side.

Status SpawnBackend::Reactor::Start(BackendEvents* events, bool driven) {
  if (events == nullptr) return InvalidArgument("spawn backend: no events sink");
  auto init = [&]() -> Status {
    DROVER_RETURN_IF_ERROR(launcher_.Init());
    buffer_ = std::make_unique<char[]>(kReadBufferSize);
    events_ = events;
    return Status::Ok();
  };
  driven_ = driven;
  if (driven) return mailbox_.StartDriven(init);
  return mailbox_.Start(
      init, [this] { Run(); }, "drover-spawn");
}

void SpawnBackend::Reactor::Poll() {
  if (!driven_ || failed_ || Done()) return;
  mailbox_.Drive();
  std::string failure;
  try {
    if (Turn(0)) return;
    failure = "its event loop failed";
  } catch (const std::exception& e) {
    failure = e.what();
  }
  Fail(std::move(failure));
}

// ---------------------------------------------------------------------------
// Reactor thread.

void SpawnBackend::Reactor::Run() {
  if (failed_) return;  // driven: a Poll failed, and Fail reported everything
  std::string failure;
  try {
    Loop();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (failure.empty() && Done()) {
    // The normal exit: Shutdown was processed and every child reported.
    mailbox_.DropQueued();
    return;
  }
  if (failure.empty()) failure = "its event loop failed";
  Fail(std::move(failure));
}

void SpawnBackend::Reactor::Fail(std::string failure) {
  failed_ = true;
  spdlog::error("spawn backend: {}; stopping every attempt", failure);
  mailbox_.Abandon();
  try {
    const std::string message = "spawn backend failed: " + failure;
    KillRemaining(FailureReason::kInternal, message, clock_.Now() + kKillWait);
    // Whatever is still in flight was queued or half-handled when the loop
    // failed; every attempt still gets its one OnFinished.
    for (uint64_t id : mailbox_.InFlight()) {
      AttemptOutcome outcome;
      outcome.reason = FailureReason::kInternal;
      outcome.message = message;
      Report(id, std::move(outcome));
    }
  } catch (const std::exception& e) {
    spdlog::error("spawn backend: cleanup failed: {}", e.what());
  }
}

void SpawnBackend::Reactor::Loop() {
  while (!Done()) {
    // Commands queued from this thread (more()) wrote no eventfd: a turn
    // that has them does not wait.
    if (!Turn(mailbox_.more() ? 0 : TimeoutMs(clock_.Now()))) return;
  }
}

bool SpawnBackend::Reactor::Turn(int timeout_ms) {
  std::array<epoll_event, kMaxEvents> events;
  int n;
  do {
    n = ::epoll_wait(mailbox_.epoll_fd(), events.data(), kMaxEvents, timeout_ms);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    spdlog::error("spawn backend: epoll_wait: {}", std::strerror(errno));
    return false;
  }
  // Output first, so a child's last bytes are read before its exit is
  // handled; then exits; then new commands.
  for (int i = 0; i < n; ++i) {
    uint64_t token = events[i].data.u64;
    uint64_t kind = token & 3;
    if (kind != kOut && kind != kErr) continue;
    if (Child* child = Find(token >> 2)) {
      ReadStream(*child, kind == kOut ? child->out : child->err, 1);
    }
  }
  for (int i = 0; i < n; ++i) {
    uint64_t token = events[i].data.u64;
    if ((token & 3) != kPidfd) continue;
    if (Child* child = Find(token >> 2)) Reap(*child);
  }
  bool wake = false;
  for (int i = 0; i < n; ++i) wake = wake || events[i].data.u64 == kWakeToken;
  if (wake || mailbox_.more()) HandleCommands(wake);
  WatchDueOutput();
  SteadyTime now = clock_.Now();
  Expire(now);
  if (shutting_down_ && !children_.empty() && now >= give_up_at_) {
    KillRemaining(FailureReason::kCancelled, "cancelled at shutdown", now);
  }
  return true;
}

int SpawnBackend::Reactor::TimeoutMs(SteadyTime now) const {
  std::optional<SteadyTime> next = deadlines_.Next();
  if (shutting_down_) next = Earliest(next, give_up_at_);
  int ms = EpollTimeoutMs(next, now);
  if (std::optional<SteadyTime> watch = watch_at_.Next()) {
    const int watch_ms = EpollTimeoutMs(watch, std::chrono::steady_clock::now());
    if (ms < 0 || watch_ms < ms) ms = watch_ms;
  }
  return ms;
}

SpawnBackend::Reactor::Child* SpawnBackend::Reactor::Find(uint64_t serial) {
  auto it = children_.find(serial);
  return it == children_.end() ? nullptr : it->second.get();
}

void SpawnBackend::Reactor::HandleCommands(bool read_wake) {
  // Commands that callbacks queue while this batch runs wait for the next
  // turn (mailbox_.more()), so a callback that always resubmits cannot
  // starve the timers.
  std::vector<Command>& batch = mailbox_.Take(read_wake);
  SteadyTime now = clock_.Now();
  for (const Command& command : batch) {
    if (command.kind == Command::Kind::kShutdown) {
      BeginShutdown(command.grace, now);
    }
  }
  for (Command& command : batch) {
    switch (command.kind) {
      case Command::Kind::kSubmit:
        if (shutting_down_) {
          // Accepted just before Shutdown: never started, nothing to stop.
          AttemptOutcome outcome;
          outcome.reason = FailureReason::kCancelled;
          outcome.message = "cancelled at shutdown before it started";
          Report(command.attempt.attempt_id, std::move(outcome));
        } else {
          Launch(std::move(command.attempt));
        }
        break;
      case Command::Kind::kCancel: {
        auto it = serial_of_.find(command.attempt_id);
        if (it == serial_of_.end()) break;  // finished meanwhile
        if (Child* child = Find(it->second)) {
          Stop(*child, FailureReason::kCancelled, "cancelled", clock_.Now());
        }
        break;
      }
      case Command::Kind::kShutdown:
        break;  // handled above
    }
  }
}

void SpawnBackend::Reactor::Launch(SpawnAttempt attempt) {
  const uint64_t id = attempt.attempt_id;
  auto child = std::make_unique<Child>(std::move(attempt));
  child->started = clock_.Now();
  const SpawnAttempt& a = child->attempt;
  const std::vector<RlimitSetting> rlimits = PlanRlimits(a.limits);
  Result<LaunchedChild> launched =
      launcher_.Launch(LaunchSpec{.argv = a.argv,
                                  .env = a.env,
                                  .cwd = a.cwd,
                                  .capture_stdout = !a.stdout_path.empty(),
                                  .capture_stderr = !a.stderr_path.empty(),
                                  .rlimits = rlimits});
  if (!launched.ok()) {
    AttemptOutcome outcome;
    outcome.reason = launched.status().code() == StatusCode::kInternal
                         ? FailureReason::kInternal
                         : FailureReason::kLaunchFailed;
    outcome.message = launched.status().message();
    outcome.wall = clock_.Now() - child->started;
    Report(id, std::move(outcome));
    return;
  }
  child->serial = next_serial_++;
  child->pid = launched->pid;
  if (guardian_) guardian_->Watch(child->pid);
  child->stop = GroupStop(child->pid);
  child->pidfd = std::move(launched->pidfd);
  child->out.fd = std::move(launched->out);
  child->err.fd = std::move(launched->err);

  // The pidfd is watched from the start, the pipes from kQuietStart on.
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = Token(child->serial, kPidfd);
  if (::epoll_ctl(mailbox_.epoll_fd(), EPOLL_CTL_ADD, child->pidfd.get(), &ev) != 0) {
    // Cannot watch it: stop it at once rather than lose track of it.
    int err = errno;
    if (guardian_) guardian_->Forget(child->pid);
    KillAndReap(child->pid);
    AttemptOutcome outcome;
    outcome.reason = FailureReason::kInternal;
    outcome.message = std::string("epoll_ctl: ") + std::strerror(err);
    child.reset();  // closes its fds
    Report(id, std::move(outcome));
    return;
  }
  const pid_t pid = child->pid;
  Child& ref = *child;
  serial_of_[id] = ref.serial;
  children_.emplace(ref.serial, std::move(child));
  if (ref.attempt.timeout > Duration(0)) {
    deadlines_.Set(ref.serial, After(ref.started, ref.attempt.timeout));
  }
  if (ref.out.fd.valid() || ref.err.fd.valid()) {
    watch_at_.Set(ref.serial, std::chrono::steady_clock::now() + kQuietStart);
  }
  events_->OnStarted(id, pid);
}

void SpawnBackend::Reactor::CloseFd(UniqueFd& fd) {
  if (!fd.valid()) return;
  // Removed explicitly: epoll drops a closed fd only when no other
  // descriptor (in any process) shares its open file description.
  ::epoll_ctl(mailbox_.epoll_fd(), EPOLL_CTL_DEL, fd.get(), nullptr);
  fd.Reset();
}

void SpawnBackend::Reactor::CloseStream(Stream& stream) {
  if (stream.watched) {
    CloseFd(stream.fd);
  } else {
    stream.fd.Reset();  // never in the set
  }
  stream.watched = false;
}

bool SpawnBackend::Reactor::WatchOutput(Child& child) {
  for (auto [stream, kind] : {std::pair{&child.out, kOut}, std::pair{&child.err, kErr}}) {
    if (!stream->fd.valid() || stream->watched) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = Token(child.serial, kind);
    if (::epoll_ctl(mailbox_.epoll_fd(), EPOLL_CTL_ADD, stream->fd.get(), &ev) != 0) {
      return false;
    }
    stream->watched = true;
  }
  return true;
}

void SpawnBackend::Reactor::WatchDueOutput() {
  if (watch_at_.empty()) return;
  const SteadyTime now = std::chrono::steady_clock::now();
  while (std::optional<uint64_t> serial = watch_at_.PopDue(now)) {
    Child* child = Find(*serial);
    if (child == nullptr) continue;
    if (!WatchOutput(*child)) {
      // Unwatched, a pipe that fills would hold the child for good: stop
      // it rather than let it hang.
      Stop(*child, FailureReason::kInternal,
           std::string("cannot watch its output: epoll_ctl: ") + std::strerror(errno),
           clock_.Now());
    }
  }
}

void SpawnBackend::Reactor::ReadStream(Child& child, Stream& stream, int max_reads) {
  for (int i = 0; i < max_reads && stream.fd.valid(); ++i) {
    ssize_t n = ::read(stream.fd.get(), buffer_.get(), kReadBufferSize);
    if (n > 0) {
      Status s = stream.capture.Append(buffer_.get(), static_cast<size_t>(n));
      if (!s.ok()) {
        spdlog::warn("attempt {}: output capture: {}", child.attempt.attempt_id,
                     s.message());
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) {
      spdlog::warn("attempt {}: reading output: {}", child.attempt.attempt_id,
                   std::strerror(errno));
    }
    CloseStream(stream);  // EOF or a broken pipe
  }
}

void SpawnBackend::Reactor::Reap(Child& child) {
  const SteadyTime exited = clock_.Now();
  // Nothing of the group may outlive its leader. The leader is a zombie
  // until Reap below, so the group id cannot have been reused yet. The
  // group is killed before the pipes are drained so that a grandchild
  // cannot keep the drain busy; what the leader wrote is in the pipe.
  SignalGroup(child.pid, SIGKILL);
  // Take what is left in the pipes, but do not wait for EOF: a process
  // that escaped the group may still hold a write end.
  ReadStream(child, child.out, kMaxDrainReads);
  ReadStream(child, child.err, kMaxDrainReads);
  CloseStream(child.out);
  CloseStream(child.err);

  // The guardian learns it before the id can be reused (guardian.h).
  if (guardian_) guardian_->Forget(child.pid);
  // The pidfd said it exited, so this returns at once.
  const Reaped reaped = drover::Reap(child.pid);
  AttemptOutcome outcome;
  outcome.wall = exited - child.started;
  const int status = reaped.status;
  if (!reaped.ok) {
    // ECHILD: someone else reaped it (e.g. SIGCHLD set to SIG_IGN).
    outcome.reason = FailureReason::kInternal;
    outcome.message =
        "cannot reap pid " + std::to_string(child.pid) + ": " + std::strerror(reaped.error);
  } else {
    SetUsage(reaped.usage, outcome);
    if (child.stop_reason != FailureReason::kNone) {
      // After a timeout or cancel the exit status is not trusted: the
      // process may have exited 0 in its SIGTERM handler.
      outcome.reason = child.stop_reason;
      outcome.message = child.stop_message;
      if (child.stop.term_ignored()) outcome.message += "; killed after ignoring SIGTERM";
      if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
    } else if (WIFEXITED(status)) {
      outcome.exit_code = WEXITSTATUS(status);
      outcome.reason =
          outcome.exit_code == 0 ? FailureReason::kNone : FailureReason::kExit;
    } else if (WIFSIGNALED(status)) {
      outcome.reason = FailureReason::kSignal;
      outcome.signal = WTERMSIG(status);
      outcome.exit_code = 128 + outcome.signal;
      if (WCOREDUMP(status)) outcome.message = "core dumped";
    }
    if (child.stop_reason == FailureReason::kNone) {
      ExplainByLimits(child.attempt.limits, nproc_enforced_, &outcome);
    }
  }
  for (auto [stream, name] :
       {std::pair{&child.out, "stdout"}, std::pair{&child.err, "stderr"}}) {
    Status s = stream->capture.Finish();
    if (!s.ok()) {
      // Output that was lost (a full spool disk, most often) fails an
      // attempt that would have succeeded: it must not pass for one that
      // printed nothing (docs/operations.md, "When the state disk is full").
      if (outcome.ok()) outcome.reason = FailureReason::kInternal;
      if (!outcome.message.empty()) outcome.message += "; ";
      outcome.message += std::string(name) + " not captured: " + s.message();
    }
  }
  outcome.out = child.out.capture.info();
  outcome.err = child.err.capture.info();
  const uint64_t id = child.attempt.attempt_id;
  Forget(child);
  Report(id, std::move(outcome));
}

void SpawnBackend::Reactor::Forget(Child& child) {
  deadlines_.Clear(child.serial);
  watch_at_.Clear(child.serial);
  CloseFd(child.pidfd);
  CloseStream(child.out);
  CloseStream(child.err);
  auto it = serial_of_.find(child.attempt.attempt_id);
  if (it != serial_of_.end() && it->second == child.serial) serial_of_.erase(it);
  children_.erase(child.serial);  // destroys `child`
}

void SpawnBackend::Reactor::Report(uint64_t attempt_id, AttemptOutcome outcome) {
  mailbox_.Release(attempt_id);  // before the event: the receiver may Submit at once
  events_->OnFinished(attempt_id, std::move(outcome));
}

void SpawnBackend::Reactor::Expire(SteadyTime now) {
  while (std::optional<uint64_t> serial = deadlines_.PopDue(now)) {
    Child* child = Find(*serial);
    if (child == nullptr) continue;
    if (child->stop.phase() == GroupStop::Phase::kAlive) {
      Stop(*child, FailureReason::kTimeout,
           "timed out after " + Seconds(child->attempt.timeout), now);
    } else {
      child->stop.GraceOver();
    }
  }
}

void SpawnBackend::Reactor::Stop(Child& child, FailureReason why, std::string message,
                                 SteadyTime now) {
  if (child.stop.phase() != GroupStop::Phase::kAlive) return;  // already stopping
  child.stop_reason = why;
  child.stop_message = std::move(message);
  deadlines_.Set(child.serial, child.stop.Terminate(child.attempt.kill_grace, now));
}

void SpawnBackend::Reactor::BeginShutdown(Duration grace, SteadyTime now) {
  if (shutting_down_) return;
  shutting_down_ = true;
  const SteadyTime kill_at = After(now, grace);
  give_up_at_ = After(kill_at, kKillWait);
  for (auto& [serial, child] : children_) {
    Stop(*child, FailureReason::kCancelled, "cancelled at shutdown", now);
    if (child->stop.phase() != GroupStop::Phase::kTerminating) continue;
    if (grace <= Duration(0)) {
      child->stop.Kill();
      deadlines_.Clear(serial);
    } else {
      deadlines_.Lower(serial, kill_at);  // the shutdown grace caps a longer kill_grace
    }
  }
}

void SpawnBackend::Reactor::KillRemaining(FailureReason reason,
                                          const std::string& message,
                                          SteadyTime give_up_at) {
  std::vector<uint64_t> serials;
  for (auto& [serial, child] : children_) {
    if (child->stop_reason == FailureReason::kNone) {
      child->stop_reason = reason;
      child->stop_message = message;
    }
    child->stop.Kill();
    serials.push_back(serial);
  }
  for (uint64_t serial : serials) {
    Child* child = Find(serial);
    if (child == nullptr) continue;
    if (WaitExited(child->pidfd.get(), give_up_at - clock_.Now())) {
      Reap(*child);
      continue;
    }
    // Stuck (e.g. uninterruptible I/O): report it and leave it unreaped
    // rather than block the shutdown forever.
    spdlog::error("attempt {}: pid {} did not exit after SIGKILL",
                  child->attempt.attempt_id, child->pid);
    AttemptOutcome outcome;
    outcome.reason = reason;
    outcome.message =
        message + "; pid " + std::to_string(child->pid) + " did not exit after SIGKILL";
    outcome.wall = clock_.Now() - child->started;
    const uint64_t id = child->attempt.attempt_id;
    Forget(*child);
    Report(id, std::move(outcome));
  }
}

// ---------------------------------------------------------------------------
// SpawnBackend: a thin front for the reactor.

SpawnBackend::SpawnBackend(const BackendConfig& config)
    : reactor_(std::make_unique<Reactor>(
          config.slots, config.clock != nullptr ? *config.clock : real_clock_,
          config.guardian)),
      slots_(config.slots),
      driven_(config.driven) {}

SpawnBackend::~SpawnBackend() { Shutdown(Duration(0)); }

Status SpawnBackend::Start(BackendEvents* events) {
  Status s = reactor_->Start(events, driven_);
  if (s.ok()) events_ = events;
  return s;
}

int SpawnBackend::PollFd() const { return reactor_->PollFd(); }
void SpawnBackend::Poll() { reactor_->Poll(); }
int SpawnBackend::PollTimeoutMs() const { return reactor_->PollTimeoutMs(); }

int SpawnBackend::Capacity() const { return slots_; }

Status SpawnBackend::Submit(TaskAttempt attempt) {
  if (events_ == nullptr) return FailedPrecondition("spawn backend is not started");
  const uint64_t id = attempt.attempt_id;
  Result<SpawnAttempt> decoded = DecodeSpawnAttempt(std::move(attempt));
  if (!decoded.ok()) {
    events_->OnFinished(
        id, AttemptFailure(FailureReason::kLaunchFailed, decoded.status().message()));
    return Status::Ok();
  }
  return reactor_->Submit(std::move(decoded).value());
}

void SpawnBackend::Cancel(uint64_t attempt_id) { reactor_->Cancel(attempt_id); }

void SpawnBackend::Shutdown(Duration grace) { reactor_->Shutdown(grace); }

}  // namespace drover
