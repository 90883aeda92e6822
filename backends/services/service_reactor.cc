// The service supervisor's reactor: one thread running epoll over the
// instances' pidfds and stderr pipes, the round-robin listening socket and
// hand-off channels, and an eventfd; plus one short-lived checker thread
// per starting instance that runs its ready probes (probe.h), which block.
// Locking: see service_internal.h.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "backends/process/guardian.h"
#include "backends/process/process_group.h"
#include "backends/services/instance_launcher.h"
#include "backends/services/service_internal.h"
#include "drover/handoff.h"

namespace drover::services::internal {

Result<std::shared_ptr<Instance>> ServiceImpl::SpawnLocked(
    int slot_index, const std::shared_ptr<const Generation>& gen) {
  Slot& slot = slots_[static_cast<size_t>(slot_index)];
  InstanceLaunch launch;
  launch.command = gen->spec.command;
  launch.env = gen->spec.env;
  launch.cwd = gen->spec.cwd;
  launch.log_fd = gen->log && gen->log->valid() ? gen->log->get() : -1;
  UniqueFd theirs;
  auto instance = std::make_shared<Instance>();
  if (mode_ == ListenMode::kRoundRobin) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
      return ErrnoError("socketpair", errno);
    }
    instance->channel.Reset(pair[0]);
    theirs.Reset(pair[1]);
    ::fcntl(instance->channel.get(), F_SETFL, O_NONBLOCK);
    launch.socket_fd = theirs.get();
    launch.handoff = true;
  } else if (mode_ == ListenMode::kReuseport) {
    launch.socket_fd = slot.listen.get();
  } else {
    launch.socket_fd = shared_listen_.get();
  }
  Result<LaunchedInstance> launched = LaunchInstance(launch);
  if (!launched.ok()) {
    return launched.status().WithContext("service " + name_ + ": instance " +
                                         std::to_string(slot_index));
  }
  if (guardian_) guardian_->Watch(launched->pid);
  instance->id = next_id_++;
  instance->slot = slot_index;
  instance->gen = gen;
  instance->pid = launched->pid;
  instance->pidfd = std::move(launched->pidfd);
  instance->err = std::move(launched->err);
  instance->their_end = std::move(theirs);
  instance->started = clock_.Now();

  auto add = [&](int fd, uint64_t kind, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = Token(instance->id, kind);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      spdlog::error("service {}: epoll_ctl: {}", name_, std::strerror(errno));
    }
  };
  add(instance->pidfd.get(), kPidfdKind, EPOLLIN);
  if (instance->err.valid()) add(instance->err.get(), kErrKind, EPOLLIN);
  if (instance->channel.valid()) add(instance->channel.get(), kChannelKind, 0);
  running_[instance->id] = instance;

  // The checker gets its own copy of the channel, so that closing ours (to
  // retire the instance) never races with a probe it is sending.
  UniqueFd probe_channel;
  if (instance->channel.valid()) {
    probe_channel.Reset(::fcntl(instance->channel.get(), F_DUPFD_CLOEXEC, 3));
  }
  ProbeTarget target;
  target.pid = instance->pid;
  target.host = host_;
  target.port = port_;
  target.address = address_;
  target.handoff_fd = probe_channel.get();
  target.any_instance = mode_ == ListenMode::kShared;
  target.others = [this, id = instance->id] {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<pid_t> pids;
    for (const auto& [other_id, other] : running_) {
      if (other_id != id && !other->exited) pids.push_back(other->pid);
    }
    return pids;
  };
  // A plain pointer: the Instance outlives its checker, whose thread is
  // joined (by the reactor, or by ~Instance) before the Instance goes.
  instance->checker = std::thread(
      [this, raw = instance.get(), target, channel = std::move(probe_channel)]() mutable {
        RunChecker(raw, target, std::move(channel));
      });
  return instance;
}

void ServiceImpl::RunChecker(Instance* instance, ProbeTarget target, UniqueFd channel) {
  const ReadyCheck& check = instance->gen->spec.ready;  // immutable once spawned
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + check.timeout;
  auto pause = std::chrono::milliseconds(5);
  Status last = Unavailable("no probe finished in time");
  while (!instance->stop_check.load()) {
    auto attempt_deadline =
        std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(2));
    last = ProbeOnce(target, check, attempt_deadline, instance->stop_check);
    if (last.ok() || last.code() == StatusCode::kCancelled) break;
    // A probe another instance took (a reload's predecessor shares this
    // slot's socket, and the kernel spreads connections over the group)
    // says nothing of this one: try again almost at once. Anything else
    // is a real "not yet", and the pause before the next probe grows to
    // 100 ms. A stop cuts either short.
    const bool missed = last.code() == StatusCode::kFailedPrecondition;
    const auto wait = missed ? std::chrono::milliseconds(1) : pause;
    if (std::chrono::steady_clock::now() + wait >= deadline) break;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, wait, [&] { return instance->stop_check.load(); });
    if (!missed) pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
  channel.Reset();
  std::lock_guard<std::mutex> lock(mu_);
  if (instance->stop_check.load() || instance->exited) return;
  const size_t index = static_cast<size_t>(instance->slot);
  const bool serving = index < slots_.size() && slots_[index].current.get() == instance;
  if (last.ok()) {
    instance->ready = true;
    if (index < slots_.size()) slots_[index].ever_ready = true;
    if (AllReadyLocked()) failure_.reset();
    spdlog::debug("{}: ready", InstanceName(*instance));
  } else {
    instance->gave_up = true;
    instance->check_error = last.message();
    // A reload's replacement that never becomes ready fails the reload
    // (which reports it), not the service: the old instance keeps serving.
    if (serving) {
      failure_ = DeadlineExceeded(InstanceName(*instance) + " is not ready after " +
                                  FormatDuration(check.timeout) + ": " + last.message());
      spdlog::warn("{}", failure_->message());
    }
  }
  cv_.notify_all();
  if (mode_ == ListenMode::kRoundRobin) Wake();  // pending connections may go now
}

void ServiceImpl::CloseLocked(UniqueFd& fd) {
  if (!fd.valid()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd.get(), nullptr);
  fd.Reset();
}

std::vector<std::shared_ptr<Instance>> ServiceImpl::KillAllNowLocked() {
  stopping_ = true;
  std::vector<std::shared_ptr<Instance>> dead;
  for (auto& [id, instance] : running_) {
    // The guardian learns it before the id can be reused (guardian.h).
    if (guardian_) guardian_->Forget(instance->pid);
    KillAndReap(instance->pid);
    instance->exited = true;
    instance->stop_check = true;
    dead.push_back(instance);
  }
  running_.clear();
  for (Slot& slot : slots_) {
    slot.current.reset();
    slot.incoming.reset();
  }
  reactor_done_ = true;
  cv_.notify_all();
  return dead;
}

void ServiceImpl::Wake() {
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_.get(), &one, sizeof(one));
  (void)ignored;
}

void ServiceImpl::RetireLocked(const std::shared_ptr<Instance>& instance, Duration drain) {
  if (!instance || instance->exited || instance->retiring) return;
  instance->retiring = true;
  instance->stop_check = true;
  // Round-robin: end of file on the channel tells it no more connections
  // come; it still reads those already queued. RouteLocked skips a retiring
  // instance, and this happens under mu_ before the SIGTERM below, so no
  // connection is handed to an instance that was told to stop.
  CloseLocked(instance->channel);
  ::kill(instance->pid, SIGTERM);
  instance->kill_at = clock_.Now() + drain;
  Wake();
}

void ServiceImpl::ReadStderrLocked(Instance& instance) {
  char buf[16384];
  const int log = instance.gen->log && instance.gen->log->valid() ? instance.gen->log->get() : -1;
  while (instance.err.valid()) {
    ssize_t n = ::read(instance.err.get(), buf, sizeof(buf));
    if (n > 0) {
      if (log >= 0) {
        ssize_t ignored = ::write(log, buf, static_cast<size_t>(n));
        (void)ignored;
      }
      instance.err_tail.append(buf, static_cast<size_t>(n));
      if (instance.err_tail.size() > 2 * kStderrTail) {
        instance.err_tail.erase(0, instance.err_tail.size() - kStderrTail);
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    CloseLocked(instance.err);  // EOF or an error: nothing more to read
  }
}

bool ServiceImpl::HasExitedLocked(const Instance& instance) const {
  if (!instance.pidfd.valid()) return instance.exited;
  pollfd p{};
  p.fd = instance.pidfd.get();
  p.events = POLLIN;
  return ::poll(&p, 1, 0) > 0;  // a pidfd is readable once its process exited
}

namespace {

// One connection from a hand-off channel without blocking (the descriptor's
// O_NONBLOCK flag is shared with the instance's copy, so it is left alone),
// or -1 when none is left.
int ReceiveNow(int chan) {
  char byte = 0;
  iovec iov{&byte, 1};
  union {
    cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);
  while (true) {
    ssize_t n = ::recvmsg(chan, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg == nullptr || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
        cmsg->cmsg_len != CMSG_LEN(sizeof(int))) {
      continue;  // not ours; skip it
    }
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    return fd;
  }
}

}  // namespace

void ServiceImpl::RescueLocked(Instance& instance) {
  if (!instance.their_end.valid()) return;
  std::deque<int> rescued;
  for (int i = 0; i < 1'000'000; ++i) {  // bounded by the channel's queue, far smaller
    int conn = ReceiveNow(instance.their_end.get());
    if (conn < 0) break;
    rescued.push_back(conn);
  }
  instance.their_end.Reset();
  if (rescued.empty()) return;
  if (stopping_) {  // nobody left to take them
    for (int conn : rescued) ::close(conn);
    return;
  }
  spdlog::info("{} exited with {} connection(s) passed but not read; passing them on",
               InstanceName(instance), rescued.size());
  // Older than anything pending: they go first.
  pending_.insert(pending_.begin(), rescued.begin(), rescued.end());
  UpdateInterestLocked();
}

void ServiceImpl::OnExitLocked(const std::shared_ptr<Instance>& instance) {
  if (instance->exited) return;
  // Exited? Asked without reaping, so that the guardian forgets the group
  // while its id is still ours (guardian.h).
  siginfo_t info{};
  int peek;
  do {
    peek = ::waitid(P_PID, static_cast<id_t>(instance->pid), &info,
                    WEXITED | WNOHANG | WNOWAIT);
  } while (peek < 0 && errno == EINTR);
  if (peek == 0 && info.si_pid == 0) return;  // spurious
  if (guardian_) guardian_->Forget(instance->pid);
  int status = 0;
  pid_t rc;
  do {
    rc = ::waitpid(instance->pid, &status, WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return;  // spurious
  ReadStderrLocked(*instance);
  instance->exited = true;
  instance->stop_check = true;
  instance->exit_text = rc > 0 ? DescribeWaitStatus(status) : "gone";
  RescueLocked(*instance);
  CloseLocked(instance->pidfd);
  CloseLocked(instance->err);
  CloseLocked(instance->channel);
  running_.erase(instance->id);
  finished_.push_back(instance);
  cv_.notify_all();

  if (instance->retiring || stopping_) return;
  const size_t index = static_cast<size_t>(instance->slot);
  if (index >= slots_.size()) return;  // its slot was removed by a reload
  Slot& slot = slots_[index];
  if (slot.incoming == instance) return;  // Reload notices and reports it
  if (slot.current != instance) return;
  slot.current.reset();
  if (slot.incoming) return;  // its replacement is on the way
  slot.last_exit = instance->exit_text;
  std::string tail = Tail(instance->err_tail);
  if (!slot.ever_ready) {
    failure_ = Unavailable(InstanceName(*instance) + " exited before it was ready: " +
                           instance->exit_text + (tail.empty() ? "" : "; stderr: " + tail));
  }
  // Crash-loop backoff: immediate after a long run, then doubling.
  const ServiceSpec& spec = slot.gen->spec;
  const SteadyTime now = clock_.Now();
  if (now - instance->started < spec.backoff_reset) {
    ++slot.fast_exits;
  } else {
    slot.fast_exits = 1;
  }
  Duration delay{0};
  if (slot.fast_exits >= 2) {
    delay = spec.backoff_initial;
    for (int i = 2; i < slot.fast_exits && delay < spec.backoff_max; ++i) delay *= 2;
    delay = std::min(delay, spec.backoff_max);
  }
  slot.respawn_at = now + delay;
  if (delay > Duration::zero()) {
    spdlog::warn("{} exited ({}), crash-looping: {} exits within {} of starting; restart in {}",
                 InstanceName(*instance), instance->exit_text, slot.fast_exits,
                 FormatDuration(spec.backoff_reset), FormatDuration(delay));
  } else {
    spdlog::warn("{} exited ({}); restarting", InstanceName(*instance), instance->exit_text);
  }
}

void ServiceImpl::TimersLocked(SteadyTime now) {
  for (auto& [id, instance] : running_) {
    if (instance->kill_at && now >= *instance->kill_at) {
      SignalGroup(instance->pid, SIGKILL);
      instance->kill_at.reset();
    }
  }
  if (stopping_) return;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (!slot.respawn_at || now < *slot.respawn_at) continue;
    slot.respawn_at.reset();
    Result<std::shared_ptr<Instance>> instance = SpawnLocked(static_cast<int>(i), slot.gen);
    if (instance.ok()) {
      slot.current = *instance;
      ++slot.restarts;
    } else {
      failure_ = instance.status();
      spdlog::error("{}", instance.status().message());
      slot.respawn_at = now + slot.gen->spec.backoff_max;
    }
  }
}

bool ServiceImpl::RouteLocked(int conn) {
  const size_t n = slots_.size();
  for (size_t tried = 0; tried < n; ++tried) {
    const size_t index = rr_next_ % n;
    rr_next_ = (index + 1) % n;
    // A copy: OnExitLocked below may reset the slot's pointer.
    std::shared_ptr<Instance> instance = slots_[index].current;
    if (!instance || !instance->ready || instance->retiring || !instance->channel.valid()) continue;
    // An instance that was killed may not have been noticed yet (its pidfd
    // event can be later in this epoll round, or in the next one): a
    // connection passed to it now would be lost with it. Ask its pidfd.
    if (HasExitedLocked(*instance)) {
      OnExitLocked(instance);
      continue;
    }
    if (drover_handoff_send(instance->channel.get(), conn) == 0) {
      ++slots_[index].connections;
      ::close(conn);
      return true;
    }
    // Not passed: this connection goes to the next ready instance instead.
    // EAGAIN: this one's channel is full (it is busy). Anything else
    // (EPIPE, ECONNREFUSED): it closed its end, because it is dying or
    // draining, and takes nothing more.
    if (errno != EAGAIN && errno != EWOULDBLOCK) CloseLocked(instance->channel);
  }
  return false;
}

void ServiceImpl::AcceptLocked() {
  if (stopping_) return;
  for (int i = 0; i < kMaxAcceptsPerWake && !listen_paused_; ++i) {
    int conn = ::accept4(shared_listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) spdlog::warn("service {}: accept: {}", name_, std::strerror(errno));
      return;
    }
    if (!pending_.empty() || !RouteLocked(conn)) {
      // No ready instance can take it now: hold it, and leave the rest in
      // the kernel's queue until one can (never refuse).
      pending_.push_back(conn);
      UpdateInterestLocked();
    }
  }
}

void ServiceImpl::FlushPendingLocked() {
  while (!pending_.empty()) {
    // Off the queue while it is routed: routing may notice an exit and put
    // the connections that instance never read at the front.
    const int conn = pending_.front();
    pending_.pop_front();
    if (!RouteLocked(conn)) {
      pending_.push_front(conn);
      break;
    }
  }
  UpdateInterestLocked();
}

void ServiceImpl::UpdateInterestLocked() {
  if (mode_ != ListenMode::kRoundRobin || stopping_) return;
  const bool pause = pending_.size() >= 1;
  auto set = [&](int fd, uint64_t token, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = token;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
  };
  if (pause != listen_paused_) {
    set(shared_listen_.get(), kListenToken, pause ? 0u : static_cast<uint32_t>(EPOLLIN));
    listen_paused_ = pause;
  }
  for (auto& [id, instance] : running_) {
    if (!instance->channel.valid()) continue;
    bool want = pause && instance->ready && !instance->retiring;
    set(instance->channel.get(), Token(id, kChannelKind),
        want ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  }
}

void ServiceImpl::RunReactor() {
  epoll_event events[64];
  while (true) {
    int timeout_ms = 100;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const SteadyTime now = clock_.Now();
      auto consider = [&](std::optional<SteadyTime> at) {
        if (!at) return;
        auto ms = std::chrono::ceil<std::chrono::milliseconds>(*at - now).count();
        timeout_ms = static_cast<int>(std::clamp<int64_t>(ms, 0, timeout_ms));
      };
      for (auto& [id, instance] : running_) consider(instance->kill_at);
      for (const Slot& slot : slots_) consider(slot.respawn_at);
    }
    int n = ::epoll_wait(epoll_.get(), events, 64, timeout_ms);
    if (n < 0 && errno != EINTR) {
      spdlog::error("service {}: epoll_wait: {}", name_, std::strerror(errno));
    }
    std::vector<std::shared_ptr<Instance>> finished;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Two passes: exits first, so that connections accepted in this round
      // are never routed to an instance whose exit the round reports.
      for (int pass = 0; pass < 2; ++pass) {
        for (int i = 0; i < n; ++i) {
          const uint64_t token = events[i].data.u64;
          const bool exit_event = token != kWakeToken && token != kListenToken &&
                                  (token & 3) == kPidfdKind;
          if (exit_event != (pass == 0)) continue;
          if (token == kWakeToken) {
            uint64_t count;
            ssize_t ignored = ::read(wake_.get(), &count, sizeof(count));
            (void)ignored;
            continue;
          }
          if (token == kListenToken) {
            AcceptLocked();
            continue;
          }
          auto it = running_.find(token >> 2);
          if (it == running_.end()) continue;
          std::shared_ptr<Instance> instance = it->second;
          switch (token & 3) {
            case kPidfdKind: OnExitLocked(instance); break;
            case kErrKind: ReadStderrLocked(*instance); break;
            case kChannelKind:
              if (events[i].events & (EPOLLHUP | EPOLLERR)) {
                // The instance closed its end: it takes no more connections.
                CloseLocked(instance->channel);
              }
              break;
          }
        }
      }
      TimersLocked(clock_.Now());
      if (mode_ == ListenMode::kRoundRobin) FlushPendingLocked();
      finished.swap(finished_);
      if (stopping_ && running_.empty()) {
        reactor_done_ = true;
        cv_.notify_all();
        break;
      }
    }
    finished.clear();  // joins their checkers, outside mu_
  }
}

}  // namespace drover::services::internal
