// The life of one pool process in the fork reactor (fork_reactor.h): start,
// message out, reply in, output, stop, reap.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "backends/fork/fork_reactor.h"
#include "backends/fork/json_scan.h"
#include "backends/fork/pool.h"
#include "backends/process/process_group.h"

namespace drover {
namespace {

constexpr size_t kReadBufferSize = 64 * 1024;
// Reads of one channel per turn: enough for a large reply to arrive in a
// few turns, bounded so one busy process cannot starve the others.
constexpr int kMaxChannelReads = 64;
// After a process exits its pipes and channel are drained with at most
// this many reads each (a grandchild that escaped may keep writing).
constexpr int kMaxDrainReads = 256;
// Output reads per pipe per turn while the process is alive.
constexpr int kMaxOutputReads = 16;
// A process that closed its channel gets this long to exit by itself
// before it is sent SIGTERM.
constexpr Duration kChannelLostGrace = std::chrono::seconds(1);

constexpr std::string_view kResultHead = R"({"result":)";

// The function name as a JSON string; registry names need no escaping.
std::string QuoteName(const std::string& fn) {
  bool plain = true;
  for (char c : fn) {
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
                      c == '-');
  }
  if (plain) return "\"" + fn + "\"";
  return nlohmann::json(fn).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Up to 120 bytes of a bad reply, for the message.
std::string Excerpt(std::string_view text) {
  constexpr size_t kMax = 120;
  std::string out(text.substr(0, kMax));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (text.size() > kMax) out += "...";
  return out;
}

Status SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoError("fcntl", errno);
  }
  return Status::Ok();
}

// A cow process's reply: {"result": V} or {"error": ..., "reason": ...}.
AttemptOutcome CowOutcome(const std::string& pool, std::string_view line) {
  AttemptOutcome outcome;
  if (line.size() >= kResultHead.size() + 1 && line.substr(0, kResultHead.size()) == kResultHead &&
      line.back() == '}') {
    outcome.exit_code = 0;
    outcome.result_json.assign(TrimJsonSpace(
        line.substr(kResultHead.size(), line.size() - kResultHead.size() - 1)));
    return outcome;
  }
  nlohmann::json reply = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (reply.is_object() && reply.contains("error") && reply["error"].is_string()) {
    outcome.message = reply["error"].get<std::string>();
    std::optional<FailureReason> reason;
    if (reply.contains("reason") && reply["reason"].is_string()) {
      reason = ParseReason(reply["reason"].get<std::string>());
    }
    outcome.reason = reason && *reason != FailureReason::kNone ? *reason : FailureReason::kExit;
    if (outcome.reason == FailureReason::kExit) {
      outcome.exit_code = reply.contains("exit_code") && reply["exit_code"].is_number_integer()
                              ? reply["exit_code"].get<int>()
                              : 1;
    }
    return outcome;
  }
  outcome.reason = FailureReason::kInternal;
  outcome.message = PoolLabel(pool) + " sent a malformed cow reply: " + Excerpt(line);
  return outcome;
}

}  // namespace

ForkReactor::Running::Running(ForkAttempt a)
    : attempt(std::move(a)),
      out(attempt.stdout_path, attempt.output_limit),
      err(attempt.stderr_path, attempt.output_limit),
      keep_out(!attempt.stdout_path.empty()),
      keep_err(!attempt.stderr_path.empty()) {}

// ---------------------------------------------------------------------------
// Starting a process.

bool ForkReactor::SpawnInto(Pool& pool, size_t index) {
  auto proc = std::make_unique<Proc>();
  proc->serial = next_serial_++;
  proc->pool_id = pool.id;
  proc->pool_name = pool.spec.name;
  proc->cow = pool.cow;
  proc->slot = static_cast<int>(index);
  proc->started = clock_.Now();
  proc->generation = zygote_generation_;
  Status s = StartProcess(pool, *proc);
  if (s.ok()) {
    if (guardian_) guardian_->Watch(proc->pid);
    proc->signals = GroupStop(proc->pid);
    const std::pair<const UniqueFd*, FdKind> watches[] = {
        {&proc->pidfd, kPidfd}, {&proc->channel, kChannel}, {&proc->out, kOut},
        {&proc->err, kErr}};
    for (const auto& [fd, kind] : watches) {
      if (s.ok()) s = Watch(fd->get(), Token(proc->serial, kind), EPOLLIN, EPOLL_CTL_ADD);
    }
    if (!s.ok()) {
      // Cannot watch it: stop it at once rather than lose track of it.
      if (guardian_) guardian_->Forget(proc->pid);
      KillAndReap(proc->pid);
      s = Internal("cannot watch its process: " + s.message());
      proc.reset();  // closing the fds drops the registrations made
    }
  }
  if (!s.ok()) {
    const std::string message = PoolLabel(pool.spec.name) + ": " + s.message();
    spdlog::warn("{}", message);
    // Nothing restarts on its own after a launch failure: the next task
    // for the pool tries again.
    for (Slot& slot : pool.slots) {
      if (slot.proc == 0) slot.wanted = false;
    }
    FailQueued(pool,
               s.code() == StatusCode::kInternal ? FailureReason::kInternal
                                                 : FailureReason::kLaunchFailed,
               message);
    return false;
  }
  if (pool.spec.idle_timeout > Duration(0)) {
    deadlines_.Set(proc->serial, After(proc->started, pool.spec.idle_timeout));
  }
  pool.slots[index].proc = proc->serial;
  ++pool.procs;
  procs_.emplace(proc->serial, std::move(proc));
  return true;
}

Status ForkReactor::StartProcess(const Pool& pool, Proc& proc) {
  const PoolSpec& spec = pool.spec;
  if (pool.cow) {
    if (zygote_ == nullptr) {
      return FailedPrecondition(
          "mode cow needs the worker's zygote, and this worker started none");
    }
    Result<CowProcess> child = zygote_->Fork(spec);
    if (!child.ok()) return child.status();
    proc.pid = child->pid;
    proc.channel = std::move(child->channel);
    proc.out = std::move(child->out);
    proc.err = std::move(child->err);
    if (child->mailbox.valid()) {
      // Without it the channel is the socket alone, as for any process.
      auto shared = CowMailbox::Map(child->mailbox.get(), CowMailbox::Side::kBackend);
      if (shared.ok()) proc.shared = std::move(shared.value());
    }
    // Our child (CLONE_PARENT) and not reaped: the pid is still its own.
    proc.pidfd.Reset(PidfdOpen(proc.pid));
    if (!proc.pidfd.valid()) {
      const int err = errno;
      KillAndReap(proc.pid);
      return Internal(std::string("pidfd_open: ") + std::strerror(err));
    }
    for (UniqueFd* fd : {&proc.out, &proc.err}) DROVER_RETURN_IF_ERROR(SetNonBlocking(fd->get()));
  } else {
    UniqueFd ours, theirs;
    DROVER_RETURN_IF_ERROR(MakeSocketPair(SOCK_STREAM, &ours, &theirs));
    if (theirs.get() <= kChannelFd) {
      // The launcher dup2()s it onto fd 3, which must be another number.
      theirs.Reset(::fcntl(theirs.get(), F_DUPFD_CLOEXEC, kChannelFd + 1));
      if (!theirs.valid()) return ErrnoError("fcntl", errno);
    }
    std::vector<std::pair<std::string, std::string>> env = spec.env;
    env.emplace_back(kChannelFdEnv, std::to_string(kChannelFd));
    env.emplace_back(kChannelModeEnv, "json");
    env.emplace_back("DROVER_POOL", spec.name);
    // Output is piped; what it is written to is the attempts' (Running).
    Result<LaunchedChild> child = launcher_.Launch(LaunchSpec{.argv = spec.command,
                                                              .env = env,
                                                              .cwd = spec.cwd,
                                                              .capture_stdout = true,
                                                              .capture_stderr = true,
                                                              .channel_fd = theirs.get()});
    theirs.Reset();  // only the child may hold it, or EOF never comes
    if (!child.ok()) return child.status();
    proc.pid = child->pid;
    proc.pidfd = std::move(child->pidfd);
    proc.out = std::move(child->out);
    proc.err = std::move(child->err);
    proc.channel = std::move(ours);
  }
  return SetNonBlocking(proc.channel.get());
}

// ---------------------------------------------------------------------------
// Message out.

void ForkReactor::Assign(Proc& proc, ForkAttempt attempt) {
  auto running = std::make_unique<Running>(std::move(attempt));
  Running& r = *running;
  r.started = clock_.Now();
  std::string_view body;
  std::string_view tail = "\n";
  if (proc.cow) {
    r.head = "{\"fn\":" + QuoteName(r.attempt.fn) + ",\"args\":";
    body = r.attempt.args_json.empty() ? kJsonNull : std::string_view(r.attempt.args_json);
    tail = "}\n";
  } else {
    body = r.attempt.message_json.empty() ? kJsonNull : std::string_view(r.attempt.message_json);
  }
  // A newline can only be whitespace in JSON (inside a string it must be
  // escaped), and it would end the frame: make it a space.
  if (body.find('\n') != std::string_view::npos) {
    r.body_copy.assign(body);
    for (char& c : r.body_copy) {
      if (c == '\n') c = ' ';
    }
    body = r.body_copy;
  }
  // A request that fits goes through the shared memory: the process, if
  // it is looking, takes it without a system call on either side; if not,
  // a "\n" on the socket wakes it. Its reply may come the same way
  // (TakeShared).
  const std::string_view bare_tail = tail.substr(0, tail.size() - 1);  // its "\n" off
  if (proc.shared != nullptr &&
      r.head.size() + body.size() + bare_tail.size() <= CowMailbox::kMaxMessage) {
    const bool ring = proc.shared->Post(r.head, body, bare_tail);
    proc.writer.Reset("", ring ? std::string_view("\n") : std::string_view(), "");
  } else {
    proc.writer.Reset(r.head, body, tail);
  }
  const uint64_t id = r.attempt.attempt_id;
  const Duration timeout = r.attempt.timeout;
  proc.running = std::move(running);
  running_in_[id] = proc.serial;
  deadlines_.Set(proc.serial, timeout > Duration(0) ? std::optional(After(r.started, timeout))
                                                    : std::nullopt);
  events_->OnStarted(id, proc.pid);
  proc.running->sent = last_sent_ = std::chrono::steady_clock::now();
  Flush(proc);
}

void ForkReactor::Flush(Proc& proc) {
  if (!proc.channel.valid()) return;
  switch (proc.writer.WriteTo(proc.channel.get())) {
    case MessageWriter::Write::kDone:
      if (proc.writing) {
        proc.writing = false;
        (void)Watch(proc.channel.get(), Token(proc.serial, kChannel), EPOLLIN, EPOLL_CTL_MOD);
      }
      return;
    case MessageWriter::Write::kAgain:
      if (!proc.writing) {
        proc.writing = true;
        Status s = Watch(proc.channel.get(), Token(proc.serial, kChannel),
                         EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        if (!s.ok()) ChannelLost(proc, "could not be watched: " + s.message());
      }
      return;
    case MessageWriter::Write::kClosed:
      ChannelLost(proc, "closed its IPC channel before taking the message");
      return;
    case MessageWriter::Write::kError:
      ChannelLost(proc, std::string("IPC channel write failed: ") + std::strerror(errno));
      return;
  }
}

// ---------------------------------------------------------------------------
// Replies and output in.

void ForkReactor::OnChannel(Proc& proc, uint32_t events) {
  if (!proc.channel.valid()) return;
  if ((events & EPOLLOUT) && proc.writing) {
    Flush(proc);
    if (!proc.channel.valid()) return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  for (int round = 0; round < kMaxChannelReads; ++round) {
    const LineReader::Fill fill = proc.reader.FillFrom(proc.channel.get());
    if (fill == LineReader::Fill::kAgain) return;
    if (fill == LineReader::Fill::kEof) {
      ChannelLost(proc, "closed its IPC channel");
      return;
    }
    if (fill == LineReader::Fill::kError) {
      ChannelLost(proc, "IPC channel error: " + proc.reader.error());
      return;
    }
    std::string_view line;
    while (proc.channel.valid() && proc.reader.NextLine(&line)) {
      if (line.size() > kMaxMessageBytes) {
        Oversize(proc);
        return;
      }
      OnLine(proc, line);
    }
    if (!proc.channel.valid()) return;
    if (proc.reader.oversize()) {
      Oversize(proc);
      return;
    }
    if (!proc.reader.last_read_full()) return;  // drained for now
  }
}

namespace {

// A message in shared memory counts while the process's channel is open:
// once it is closed (the process is being stopped), nothing it says is
// taken, and a late reply must not keep the loop from blocking.
template <typename P>
bool SharedReplyWaits(const P& proc) {
  return proc.shared && proc.channel.valid() && proc.shared->Waiting();
}

}  // namespace

bool ForkReactor::SharedWaiting() const {
  for (const auto& [serial, proc] : procs_) {
    if (SharedReplyWaits(*proc)) return true;
  }
  return false;
}

void ForkReactor::NoteSharedReplies() {
  shared_replies_.clear();
  for (const auto& [serial, proc] : procs_) {
    if (SharedReplyWaits(*proc)) shared_replies_.push_back(serial);
  }
}

void ForkReactor::TakeShared() {
  // By serial: a reply may start or stop processes (AfterTask).
  std::vector<uint64_t> ready;
  ready.swap(shared_replies_);
  for (uint64_t serial : ready) {
    Proc* proc = FindProc(serial);
    std::string_view line;
    if (proc != nullptr && proc->channel.valid() && proc->shared->Take(&line)) {
      OnLine(*proc, line);
    }
  }
}

void ForkReactor::OnLine(Proc& proc, std::string_view line) {
  line = TrimJsonSpace(line);
  if (line.empty()) return;  // a blank line carries no message
  if (!proc.running || proc.stop != StopKind::kNone) {
    spdlog::debug("{}: dropped a message from process {} that holds no task",
                  PoolLabel(proc.pool_name), proc.pid);
    return;
  }
  AttemptOutcome outcome;
  if (proc.cow) {
    outcome = CowOutcome(proc.pool_name, line);
  } else if (Status valid = ValidateJson(line); !valid.ok()) {
    // The framing is intact, so the process can take the next task.
    outcome.reason = FailureReason::kInternal;
    outcome.message = PoolLabel(proc.pool_name) + " replied with invalid JSON (" +
                      valid.message() + "): " + Excerpt(line);
  } else if (IsNodeInternalMessage(line)) {
    return;  // Node's own traffic ({"cmd": "NODE_..."}), never a reply
  } else {
    outcome.exit_code = 0;
    outcome.result_json.assign(line);
  }
  Finish(proc, std::move(outcome));
}

void ForkReactor::OnOutput(Proc& proc, bool is_err, int max_reads) {
  UniqueFd& fd = is_err ? proc.err : proc.out;
  for (int i = 0; i < max_reads && fd.valid(); ++i) {
    ssize_t n = ::read(fd.get(), buffer_.get(), kReadBufferSize);
    if (n > 0) {
      // Output belongs to the task the process holds; between tasks it is
      // dropped (fork_backend.h).
      if (proc.running && (is_err ? proc.running->keep_err : proc.running->keep_out)) {
        OutputCapture& capture = is_err ? proc.running->err : proc.running->out;
        Status s = capture.Append(buffer_.get(), static_cast<size_t>(n));
        if (!s.ok()) {
          spdlog::warn("attempt {}: output capture: {}", proc.running->attempt.attempt_id,
                       s.message());
        }
      }
      if (static_cast<size_t>(n) < kReadBufferSize) return;  // drained
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    CloseFd(fd);  // EOF or a broken pipe
  }
}

// ---------------------------------------------------------------------------
// Ending a task, stopping and reaping a process.

void ForkReactor::Finish(Proc& proc, AttemptOutcome outcome) {
  std::unique_ptr<Running> r = std::move(proc.running);
  deadlines_.Clear(proc.serial);
  outcome.wall = clock_.Now() - r->started;
  spin_.Answered(std::chrono::steady_clock::now() - r->sent);
  for (auto [capture, name] :
       {std::pair{&r->out, "stdout"}, std::pair{&r->err, "stderr"}}) {
    Status s = capture->Finish();
    if (!s.ok()) {
      if (!outcome.message.empty()) outcome.message += "; ";
      outcome.message += std::string(name) + " not captured: " + s.message();
    }
  }
  outcome.out = r->out.info();
  outcome.err = r->err.info();
  const uint64_t id = r->attempt.attempt_id;
  running_in_.erase(id);
  ++proc.tasks;
  Report(id, std::move(outcome));
  AfterTask(proc);
}

void ForkReactor::AfterTask(Proc& proc) {
  if (proc.exited || proc.stop != StopKind::kNone) return;
  Pool* pool = FindPool(proc.pool_id);
  if (pool == nullptr || pool->superseded || shutting_down_) {
    Stop(proc, StopKind::kRetire, "", kRetireGrace);
    return;
  }
  if ((pool->spec.max_tasks > 0 && proc.tasks >= pool->spec.max_tasks) ||
      (proc.cow && proc.generation < zygote_generation_)) {
    // Recycled (or forked before a plugin load): the slot stays wanted, so
    // a fresh process starts now.
    Stop(proc, StopKind::kRetire, "", kRetireGrace);
    Replenish(pool->id);
    return;
  }
  if (pool->spec.idle_timeout > Duration(0)) {
    deadlines_.Set(proc.serial, After(clock_.Now(), pool->spec.idle_timeout));
  }
  Dispatch(*pool);
}

void ForkReactor::ChannelLost(Proc& proc, std::string note) {
  // A reply it left in shared memory before it closed the channel is its
  // last word, as a line before the EOF would be; its output first.
  std::string_view line;
  if (proc.shared && proc.running && proc.stop == StopKind::kNone &&
      proc.shared->Waiting()) {
    OnOutput(proc, false, 16);
    OnOutput(proc, true, 16);
    if (proc.shared->Take(&line)) OnLine(proc, line);
  }
  if (proc.note.empty()) proc.note = std::move(note);
  Stop(proc, StopKind::kChannelLost, "", Duration(0));
}

void ForkReactor::Oversize(Proc& proc) {
  const uint64_t pool_id = proc.pool_id;
  const std::string message = PoolLabel(proc.pool_name) + " replied with a message over the " +
                              std::to_string(kMaxMessageBytes >> 20) +
                              " MiB cap; its process is replaced";
  if (proc.running) {
    Stop(proc, StopKind::kOversize, message, proc.running->attempt.kill_grace);
  } else {
    spdlog::warn("{} (it held no task)", message);
    Stop(proc, StopKind::kRetire, "", kRetireGrace);
  }
  Replenish(pool_id);
}

void ForkReactor::Stop(Proc& proc, StopKind kind, std::string message, Duration grace) {
  if (proc.exited) return;
  const bool upgrade = proc.stop == StopKind::kChannelLost && kind != StopKind::kChannelLost;
  if (proc.stop != StopKind::kNone && !upgrade) return;
  proc.stop = kind;
  if (proc.running && proc.running->stop_reason == FailureReason::kNone) {
    switch (kind) {
      case StopKind::kTimeout:
        proc.running->stop_reason = FailureReason::kTimeout;
        break;
      case StopKind::kCancel:
      case StopKind::kShutdown:
        proc.running->stop_reason = FailureReason::kCancelled;
        break;
      case StopKind::kOversize:
        proc.running->stop_reason = FailureReason::kInternal;
        break;
      default:
        break;
    }
    if (proc.running->stop_reason != FailureReason::kNone) {
      proc.running->stop_message = std::move(message);
    }
  }
  // Closing the channel tells a well-behaved process (Node, the Python
  // example) to exit, and means no reply can arrive any more.
  CloseFd(proc.channel);
  proc.writing = false;
  const SteadyTime now = clock_.Now();
  if (kind == StopKind::kChannelLost) {
    // Probably exiting on its own: give it a moment before signals, and
    // keep its slot until it is reaped so a crash counts as one.
    deadlines_.Set(proc.serial, After(now, kChannelLostGrace));
    return;
  }
  Detach(proc);
  if (proc.signals.phase() == GroupStop::Phase::kKilled) return;
  const bool alive = proc.signals.phase() == GroupStop::Phase::kAlive;
  const std::optional<SteadyTime> kill_at = proc.signals.Terminate(grace, now);
  if (!kill_at) {
    deadlines_.Clear(proc.serial);  // SIGKILLed at once
  } else if (alive) {
    deadlines_.Set(proc.serial, kill_at);  // replaces a timeout or idle timer
  } else {
    deadlines_.Lower(proc.serial, *kill_at);  // already terminating: only sooner
  }
}

void ForkReactor::Detach(Proc& proc) {
  if (proc.slot < 0) return;
  if (Pool* pool = FindPool(proc.pool_id)) {
    Slot& slot = pool->slots[static_cast<size_t>(proc.slot)];
    if (slot.proc == proc.serial) slot.proc = 0;
  }
  proc.slot = -1;
}

void ForkReactor::Reap(Proc& proc) {
  const SteadyTime now = clock_.Now();
  proc.exited = true;
  // Nothing of its group may outlive it; the leader is a zombie until
  // wait4, so the group id is still its own.
  SignalGroup(proc.pid, SIGKILL);
  OnOutput(proc, false, kMaxDrainReads);
  OnOutput(proc, true, kMaxDrainReads);
  // A reply written just before exiting still counts.
  for (int i = 0; i < kMaxDrainReads && proc.running && proc.channel.valid(); ++i) {
    if (proc.reader.FillFrom(proc.channel.get()) != LineReader::Fill::kData) break;
    std::string_view line;
    while (proc.running && proc.reader.NextLine(&line)) {
      if (line.size() <= kMaxMessageBytes) OnLine(proc, line);
    }
  }

  // The guardian learns it before the id can be reused (guardian.h).
  if (guardian_) guardian_->Forget(proc.pid);
  const Reaped reaped = drover::Reap(proc.pid);
  const int status = reaped.status;

  const std::string label = PoolLabel(proc.pool_name);
  const std::string what = reaped.ok ? DescribeWaitStatus(status) : "could not be reaped";
  const bool on_its_own =
      proc.stop == StopKind::kNone || proc.stop == StopKind::kChannelLost;
  std::string crash_loop;
  Pool* pool = FindPool(proc.pool_id);
  if (pool != nullptr && proc.slot >= 0 && on_its_own && !shutting_down_) {
    Slot& slot = pool->slots[static_cast<size_t>(proc.slot)];
    const Duration lived = now - proc.started;
    if (lived < kQuickExit) {
      ++slot.quick_exits;
      const Duration delay = CrashBackoff(slot.quick_exits);
      slot.restart_at = now + delay;
      restarts_.emplace(*slot.restart_at, pool->id, static_cast<size_t>(proc.slot));
      if (slot.quick_exits >= 2) {
        crash_loop = "; " + label + " is crash-looping (" + std::to_string(slot.quick_exits) +
                     " quick exits in a row), next start in " + FormatDuration(delay);
      }
      spdlog::warn("{}: process {} {} {} after it started; restarting it in {}{}", label,
                   proc.pid, what, FormatDuration(lived), FormatDuration(delay),
                   slot.quick_exits >= 2 ? " (crash loop)" : "");
    } else {
      slot.quick_exits = 0;
      spdlog::warn("{}: process {} {}", label, proc.pid, what);
    }
  }

  if (proc.running) {
    Running& run = *proc.running;
    AttemptOutcome outcome;
    outcome.wall = now - run.started;
    // Only the peak RSS: its CPU time is the process's, over every task.
    if (reaped.ok) outcome.max_rss_kb = reaped.usage.ru_maxrss;
    if (run.stop_reason != FailureReason::kNone) {
      // After a timeout or cancel the exit status is not trusted.
      outcome.reason = run.stop_reason;
      outcome.message = run.stop_message;
      if (proc.signals.term_ignored()) outcome.message += "; killed after ignoring SIGTERM";
      if (reaped.ok && WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
    } else if (!reaped.ok) {
      outcome.reason = FailureReason::kInternal;
      outcome.message = "cannot reap pid " + std::to_string(proc.pid) + ": " +
                        std::strerror(reaped.error);
    } else {
      outcome.reason = FailureReason::kProcessCrashed;
      outcome.message = label + " process " + std::to_string(proc.pid) + " " + what +
                        " while running the task";
      if (!proc.note.empty()) outcome.message += " (it " + proc.note + ")";
      outcome.message += crash_loop;
      if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
      if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
    }
    for (auto [capture, name] :
         {std::pair{&run.out, "stdout"}, std::pair{&run.err, "stderr"}}) {
      Status s = capture->Finish();
      if (!s.ok()) outcome.message += std::string("; ") + name + " not captured: " + s.message();
    }
    outcome.out = run.out.info();
    outcome.err = run.err.info();
    const uint64_t id = run.attempt.attempt_id;
    running_in_.erase(id);
    proc.running.reset();
    Report(id, std::move(outcome));
  }
  const uint64_t pool_id = proc.pool_id;
  Forget(proc);  // destroys `proc`
  Replenish(pool_id);
  MaybeDropPool(pool_id);
}

void ForkReactor::Forget(Proc& proc) {
  deadlines_.Clear(proc.serial);
  Detach(proc);
  if (Pool* pool = FindPool(proc.pool_id)) --pool->procs;
  if (proc.running) running_in_.erase(proc.running->attempt.attempt_id);
  CloseFd(proc.pidfd);
  CloseFd(proc.channel);
  CloseFd(proc.out);
  CloseFd(proc.err);
  procs_.erase(proc.serial);
}

Status ForkReactor::Watch(int fd, uint64_t token, uint32_t events, int op) {
  if (fd < 0) return Status::Ok();
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(mailbox_.epoll_fd(), op, fd, &ev) != 0) return ErrnoError("epoll_ctl", errno);
  return Status::Ok();
}

void ForkReactor::CloseFd(UniqueFd& fd) {
  if (!fd.valid()) return;
  // Removed explicitly: epoll drops a closed fd only when no other
  // descriptor (in any process) shares its open file description.
  ::epoll_ctl(mailbox_.epoll_fd(), EPOLL_CTL_DEL, fd.get(), nullptr);
  fd.Reset();
}

}  // namespace drover
