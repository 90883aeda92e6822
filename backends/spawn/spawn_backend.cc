// The spawn backend's reactor: one thread that owns every child, pipe and
// deadline of the backend.
//
// Each turn of the loop waits in epoll on:
//   - the mailbox's eventfd, written by Submit/Cancel/Shutdown after they
//     queue a command (reactor_mailbox.h),
//   - one pidfd per child (readable when the leader exits),
//   - the read ends of each child's stdout/stderr pipes,
// with the epoll timeout set to the nearest deadline (a task's timeout or
// the end of its kill grace). Output is read before exits are handled, so a
// child's last bytes are in its files before it is reported.
#include "backends/spawn/spawn_backend.h"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backends/spawn/child_launcher.h"
#include "backends/spawn/output_capture.h"
#include "backends/spawn/reactor_mailbox.h"
#include "backends/spawn/unique_fd.h"

namespace drover {
namespace {

using std::chrono::steady_clock;

// One read buffer for the whole reactor: memory does not grow with output.
constexpr size_t kReadBufferSize = 64 * 1024;
constexpr int kMaxEvents = 64;
// After the leader exits its pipes are drained with at most this many reads
// each: enough to empty any pipe, bounded so that a writer which escaped the
// process group cannot hold the reactor.
constexpr int kMaxDrainReads = 256;
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

// now + d, saturating: a timeout or grace of "forever" must not wrap.
SteadyTime After(SteadyTime now, Duration d) {
  if (d > SteadyTime::max() - now) return SteadyTime::max();
  return now + d;
}

Duration FromTimeval(const timeval& tv) {
  return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

// Signals a child's process group. Only called while the leader is not
// reaped, so its pid (= the group id) cannot have been reused. Falls back to
// the leader alone if it moved itself out of the group.
void SignalGroup(pid_t pgid, int sig) {
  if (::kill(-pgid, sig) != 0 && errno == ESRCH) ::kill(pgid, sig);
}

}  // namespace

class SpawnBackend::Reactor {
 public:
  explicit Reactor(int slots) : mailbox_("spawn", slots) {}
  ~Reactor() = default;  // SpawnBackend's destructor has joined the thread

  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  Status Start(BackendEvents* events);
  Status Submit(SpawnAttempt attempt) { return mailbox_.Submit(std::move(attempt)); }
  void Cancel(uint64_t attempt_id) { mailbox_.Cancel(attempt_id); }
  void Shutdown(Duration grace) { mailbox_.Shutdown(grace); }

 private:
  using Mailbox = ReactorMailbox<SpawnAttempt>;
  using Command = Mailbox::Command;

  struct Stream {
    UniqueFd fd;  // read end of the pipe, or none once closed
    OutputCapture capture;
  };

  enum class Phase {
    kRunning,      // no signal sent yet
    kTerminating,  // SIGTERM sent, waiting for kill_grace
    kKilled,       // SIGKILL sent
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
    std::optional<SteadyTime> deadline;  // its entry in deadlines_
    Phase phase = Phase::kRunning;
    bool term_ignored = false;  // SIGKILL was needed after the grace
    FailureReason stop_reason = FailureReason::kNone;  // timeout / cancel
    std::string stop_message;
  };

  // Reactor thread.
  void Run();
  void Loop();
  int TimeoutMs(SteadyTime now) const;
  void HandleCommands(bool read_wake);
  void Launch(SpawnAttempt attempt);
  void ReadStream(Child& child, Stream& stream, int max_reads);
  void CloseFd(UniqueFd& fd);
  void Reap(Child& child);
  void Expire(SteadyTime now);
  void Stop(Child& child, FailureReason why, std::string message, SteadyTime now);
  void SetDeadline(Child& child, std::optional<SteadyTime> when);
  void BeginShutdown(Duration grace, SteadyTime now);
  void KillRemaining(FailureReason reason, const std::string& message,
                     SteadyTime give_up_at);
  void Forget(Child& child);
  void Report(uint64_t attempt_id, AttemptOutcome outcome);
  Child* Find(uint64_t serial);

  Mailbox mailbox_;
  BackendEvents* events_ = nullptr;  // set by Start, before the thread runs

  // Owned by the reactor thread (Start sets them up before it runs).
  ChildLauncher launcher_;
  std::unique_ptr<char[]> buffer_;
  std::unordered_map<uint64_t, std::unique_ptr<Child>> children_;  // by serial
  std::unordered_map<uint64_t, uint64_t> serial_of_;               // attempt id -> serial
  std::set<std::pair<SteadyTime, uint64_t>> deadlines_;            // (when, serial)
  uint64_t next_serial_ = 1;
  bool shutting_down_ = false;
  SteadyTime give_up_at_;  // shutdown: stop waiting for killed children
};

// ---------------------------------------------------------------------------
// Caller side.

Status SpawnBackend::Reactor::Start(BackendEvents* events) {
  if (events == nullptr) return InvalidArgument("spawn backend: no events sink");
  return mailbox_.Start(
      [&]() -> Status {
        DROVER_RETURN_IF_ERROR(launcher_.Init());
        buffer_ = std::make_unique<char[]>(kReadBufferSize);
        events_ = events;
        return Status::Ok();
      },
      [this] { Run(); }, "drover-spawn");
}

// ---------------------------------------------------------------------------
// Reactor thread.

void SpawnBackend::Reactor::Run() {
  std::string failure;
  try {
    Loop();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (failure.empty() && shutting_down_ && children_.empty()) {
    // The normal exit: Shutdown was processed and every child reported.
    mailbox_.DropQueued();
    return;
  }
  if (failure.empty()) failure = "its event loop failed";
  spdlog::error("spawn backend: {}; stopping every attempt", failure);
  mailbox_.Abandon();
  try {
    const std::string message = "spawn backend failed: " + failure;
    KillRemaining(FailureReason::kInternal, message, steady_clock::now() + kKillWait);
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
  std::array<epoll_event, kMaxEvents> events;
  while (!(shutting_down_ && children_.empty())) {
    int n = ::epoll_wait(mailbox_.epoll_fd(), events.data(), kMaxEvents,
                         TimeoutMs(steady_clock::now()));
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("spawn backend: epoll_wait: {}", std::strerror(errno));
      return;
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
    SteadyTime now = steady_clock::now();
    Expire(now);
    if (shutting_down_ && !children_.empty() && now >= give_up_at_) {
      KillRemaining(FailureReason::kCancelled, "cancelled at shutdown", now);
    }
  }
}

int SpawnBackend::Reactor::TimeoutMs(SteadyTime now) const {
  std::optional<SteadyTime> next;
  if (!deadlines_.empty()) next = deadlines_.begin()->first;
  if (shutting_down_ && (!next || give_up_at_ < *next)) next = give_up_at_;
  if (!next) return -1;
  if (*next <= now) return 0;
  // Round up: waking a little late is fine, spinning until the deadline
  // with zero timeouts is not.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next - now).count();
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
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
  SteadyTime now = steady_clock::now();
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
          Stop(*child, FailureReason::kCancelled, "cancelled", steady_clock::now());
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
  child->started = steady_clock::now();
  Result<LaunchedChild> launched = launcher_.Launch(child->attempt);
  if (!launched.ok()) {
    AttemptOutcome outcome;
    outcome.reason = launched.status().code() == StatusCode::kInternal
                         ? FailureReason::kInternal
                         : FailureReason::kLaunchFailed;
    outcome.message = launched.status().message();
    outcome.wall = steady_clock::now() - child->started;
    Report(id, std::move(outcome));
    return;
  }
  child->serial = next_serial_++;
  child->pid = launched->pid;
  child->pidfd = std::move(launched->pidfd);
  child->out.fd = std::move(launched->out);
  child->err.fd = std::move(launched->err);

  const std::pair<const UniqueFd*, FdKind> watches[] = {
      {&child->pidfd, kPidfd}, {&child->out.fd, kOut}, {&child->err.fd, kErr}};
  for (const auto& [fd, kind] : watches) {
    if (!fd->valid()) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = Token(child->serial, kind);
    if (::epoll_ctl(mailbox_.epoll_fd(), EPOLL_CTL_ADD, fd->get(), &ev) != 0) {
      // Cannot watch it: stop it at once rather than lose track of it.
      int err = errno;
      SignalGroup(child->pid, SIGKILL);
      while (::waitpid(child->pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      AttemptOutcome outcome;
      outcome.reason = FailureReason::kInternal;
      outcome.message = std::string("epoll_ctl: ") + std::strerror(err);
      // Closing the fds drops whatever registrations succeeded.
      child.reset();
      Report(id, std::move(outcome));
      return;
    }
  }
  const pid_t pid = child->pid;
  Child& ref = *child;
  serial_of_[id] = ref.serial;
  children_.emplace(ref.serial, std::move(child));
  if (ref.attempt.timeout > Duration(0)) {
    SetDeadline(ref, After(ref.started, ref.attempt.timeout));
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
    CloseFd(stream.fd);  // EOF or a broken pipe
  }
}

void SpawnBackend::Reactor::Reap(Child& child) {
  const SteadyTime exited = steady_clock::now();
  // Nothing of the group may outlive its leader. The leader is a zombie
  // until wait4 below, so the group id cannot have been reused yet. The
  // group is killed before the pipes are drained so that a grandchild
  // cannot keep the drain busy; what the leader wrote is in the pipe.
  SignalGroup(child.pid, SIGKILL);
  // Take what is left in the pipes, but do not wait for EOF: a process
  // that escaped the group may still hold a write end.
  ReadStream(child, child.out, kMaxDrainReads);
  ReadStream(child, child.err, kMaxDrainReads);
  CloseFd(child.out.fd);
  CloseFd(child.err.fd);

  int status = 0;
  rusage usage{};
  pid_t r;
  do {
    r = ::wait4(child.pid, &status, WNOHANG, &usage);
  } while (r < 0 && errno == EINTR);
  if (r == 0) {
    // The pidfd said it exited, so this returns at once.
    do {
      r = ::wait4(child.pid, &status, 0, &usage);
    } while (r < 0 && errno == EINTR);
  }

  const int wait_errno = errno;
  AttemptOutcome outcome;
  outcome.wall = exited - child.started;
  if (r != child.pid) {
    // ECHILD: someone else reaped it (e.g. SIGCHLD set to SIG_IGN).
    outcome.reason = FailureReason::kInternal;
    outcome.message =
        "cannot reap pid " + std::to_string(child.pid) + ": " + std::strerror(wait_errno);
  } else {
    outcome.cpu_user = FromTimeval(usage.ru_utime);
    outcome.cpu_sys = FromTimeval(usage.ru_stime);
    outcome.max_rss_kb = usage.ru_maxrss;
    if (child.stop_reason != FailureReason::kNone) {
      // After a timeout or cancel the exit status is not trusted: the
      // process may have exited 0 in its SIGTERM handler.
      outcome.reason = child.stop_reason;
      outcome.message = child.stop_message;
      if (child.term_ignored) outcome.message += "; killed after ignoring SIGTERM";
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
  }
  for (auto [stream, name] :
       {std::pair{&child.out, "stdout"}, std::pair{&child.err, "stderr"}}) {
    Status s = stream->capture.Finish();
    if (!s.ok()) {
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
  SetDeadline(child, std::nullopt);
  CloseFd(child.pidfd);
  CloseFd(child.out.fd);
  CloseFd(child.err.fd);
  auto it = serial_of_.find(child.attempt.attempt_id);
  if (it != serial_of_.end() && it->second == child.serial) serial_of_.erase(it);
  children_.erase(child.serial);  // destroys `child`
}

void SpawnBackend::Reactor::Report(uint64_t attempt_id, AttemptOutcome outcome) {
  mailbox_.Release(attempt_id);  // before the event: the receiver may Submit at once
  events_->OnFinished(attempt_id, std::move(outcome));
}

void SpawnBackend::Reactor::SetDeadline(Child& child, std::optional<SteadyTime> when) {
  if (child.deadline) deadlines_.erase({*child.deadline, child.serial});
  child.deadline = when;
  if (when) deadlines_.emplace(*when, child.serial);
}

void SpawnBackend::Reactor::Expire(SteadyTime now) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    uint64_t serial = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    Child* child = Find(serial);
    if (child == nullptr) continue;
    child->deadline.reset();
    if (child->phase == Phase::kRunning) {
      Stop(*child, FailureReason::kTimeout,
           "timed out after " + Seconds(child->attempt.timeout), now);
    } else if (child->phase == Phase::kTerminating) {
      SignalGroup(child->pid, SIGKILL);
      child->phase = Phase::kKilled;
      child->term_ignored = true;
    }
  }
}

void SpawnBackend::Reactor::Stop(Child& child, FailureReason why, std::string message,
                                 SteadyTime now) {
  if (child.phase != Phase::kRunning) return;  // already stopping
  child.stop_reason = why;
  child.stop_message = std::move(message);
  if (child.attempt.kill_grace <= Duration(0)) {
    SignalGroup(child.pid, SIGKILL);
    child.phase = Phase::kKilled;
    SetDeadline(child, std::nullopt);
    return;
  }
  SignalGroup(child.pid, SIGTERM);
  // A stopped process acts on SIGTERM only once continued.
  SignalGroup(child.pid, SIGCONT);
  child.phase = Phase::kTerminating;
  SetDeadline(child, After(now, child.attempt.kill_grace));
}

void SpawnBackend::Reactor::BeginShutdown(Duration grace, SteadyTime now) {
  if (shutting_down_) return;
  shutting_down_ = true;
  const SteadyTime kill_at = After(now, grace);
  give_up_at_ = After(kill_at, kKillWait);
  for (auto& [serial, child] : children_) {
    Stop(*child, FailureReason::kCancelled, "cancelled at shutdown", now);
    if (child->phase != Phase::kTerminating) continue;
    if (grace <= Duration(0)) {
      SignalGroup(child->pid, SIGKILL);
      child->phase = Phase::kKilled;
      SetDeadline(*child, std::nullopt);
    } else if (!child->deadline || *child->deadline > kill_at) {
      // The shutdown grace overrides a longer kill_grace.
      SetDeadline(*child, kill_at);
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
    SignalGroup(child->pid, SIGKILL);
    child->phase = Phase::kKilled;
    serials.push_back(serial);
  }
  for (uint64_t serial : serials) {
    Child* child = Find(serial);
    if (child == nullptr) continue;
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(give_up_at - steady_clock::now());
    pollfd p{child->pidfd.get(), POLLIN, 0};
    int ready;
    do {
      ready = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    } while (ready < 0 && errno == EINTR);
    if (ready > 0) {
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
    outcome.wall = steady_clock::now() - child->started;
    const uint64_t id = child->attempt.attempt_id;
    Forget(*child);
    Report(id, std::move(outcome));
  }
}

// ---------------------------------------------------------------------------
// SpawnBackend: a thin front for the reactor.

SpawnBackend::SpawnBackend(const BackendConfig& config)
    : reactor_(std::make_unique<Reactor>(config.slots)), slots_(config.slots) {}

SpawnBackend::~SpawnBackend() { Shutdown(Duration(0)); }

Status SpawnBackend::Start(BackendEvents* events) {
  Status s = reactor_->Start(events);
  if (s.ok()) events_ = events;
  return s;
}

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
