// The service supervisor: one reactor thread (epoll over pidfds, stderr
// pipes, the round-robin listening socket and hand-off channels, and an
// eventfd), plus one short-lived checker thread per starting instance that
// runs its ready probes (probe.h), which block.
//
// Locking: mu_ guards all state. The reactor holds it while it handles a
// batch of events; the public methods hold it except while they wait on
// cv_. Checker threads take it to post a result, so nobody joins a checker
// while holding mu_ (finished instances are joined by the reactor after it
// lets go of the lock).
#include "backends/cluster/service.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "backends/cluster/instance_launcher.h"
#include "backends/cluster/listen_socket.h"
#include "backends/cluster/probe.h"
#include "backends/spawn/epoll_wake.h"
#include "backends/spawn/unique_fd.h"
#include "drover/handoff.h"

namespace drover::cluster {

std::string_view ListenModeName(ListenMode mode) {
  switch (mode) {
    case ListenMode::kReuseport: return "reuseport";
    case ListenMode::kShared: return "shared";
    case ListenMode::kRoundRobin: return "round-robin";
  }
  return "?";
}

Result<ListenMode> ParseListenMode(std::string_view text) {
  if (text == "reuseport") return ListenMode::kReuseport;
  if (text == "shared") return ListenMode::kShared;
  if (text == "round-robin") return ListenMode::kRoundRobin;
  return InvalidArgument("unknown mode '" + std::string(text) +
                         "' (expected reuseport, shared or round-robin)");
}

namespace {

constexpr uint64_t kWakeToken = 0;
constexpr uint64_t kListenToken = 1;
enum : uint64_t { kPidfdKind = 1, kErrKind = 2, kChannelKind = 3 };
constexpr size_t kStderrTail = 2048;
constexpr int kMaxAcceptsPerWake = 64;

uint64_t Token(uint64_t id, uint64_t kind) { return id << 2 | kind; }

std::string Tail(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  if (t.size() > 600) t = "..." + t.substr(t.size() - 600);
  return t;
}

std::string CommandText(const std::vector<std::string>& command) {
  std::string text;
  for (const std::string& arg : command) text += (text.empty() ? "" : " ") + arg;
  return text;
}

struct Instance {
  uint64_t id = 0;
  int slot = 0;
  pid_t pid = 0;
  UniqueFd pidfd;
  UniqueFd err;
  UniqueFd channel;  // round-robin: our end of the hand-off channel
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
  std::shared_ptr<Instance> current;
  std::shared_ptr<Instance> incoming;  // Reload: the replacement, until ready
  uint64_t restarts = 0;
  uint64_t connections = 0;
  int fast_exits = 0;
  bool ever_ready = false;
  std::optional<SteadyTime> respawn_at;
  std::string last_exit;
};

class ServiceImpl final : public Service {
 public:
  ServiceImpl(ServiceSpec spec, const Clock& clock) : spec_(std::move(spec)), clock_(clock) {}
  ~ServiceImpl() override { Shutdown(spec_.kill_grace); }

  Status Init();
  const std::string& name() const override { return spec_.name; }
  int port() const override { return port_; }
  Status WaitReady(Duration timeout) override;
  Status Reload() override;
  void Shutdown(Duration grace) override;
  std::vector<InstanceStats> Instances() const override;
  std::string Describe() const override;

 private:
  // All of these run with mu_ held.
  Result<std::shared_ptr<Instance>> SpawnLocked(int slot);
  void RetireLocked(const std::shared_ptr<Instance>& instance, Duration drain);
  bool AllReadyLocked() const;
  std::string DescribeLocked() const;
  std::string InstanceName(const Instance& instance) const;
  void OnExitLocked(const std::shared_ptr<Instance>& instance);
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

  void RunReactor();
  void RunChecker(Instance* instance, ProbeTarget target, UniqueFd channel);

  const ServiceSpec spec_;
  const Clock& clock_;
  SocketAddress address_;
  int port_ = 0;
  UniqueFd shared_listen_;  // shared and round-robin modes
  UniqueFd log_;
  UniqueFd epoll_;
  UniqueFd wake_;
  std::thread reactor_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
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

std::string ServiceImpl::InstanceName(const Instance& instance) const {
  return "service " + spec_.name + ": instance " + std::to_string(instance.slot) + " (pid " +
         std::to_string(instance.pid) + ")";
}

Status ServiceImpl::Init() {
  if (spec_.command.empty()) return InvalidArgument("service " + spec_.name + ": empty command");
  if (spec_.instances < 1 || spec_.instances > 1024) {
    return InvalidArgument("service " + spec_.name + ": instances must be 1-1024, not " +
                           std::to_string(spec_.instances));
  }
  Result<SocketAddress> address = ResolveHost(spec_.host, spec_.port);
  if (!address.ok()) return address.status().WithContext("service " + spec_.name);
  address_ = *address;
  slots_.resize(static_cast<size_t>(spec_.instances));
  if (spec_.mode == ListenMode::kReuseport) {
    for (Slot& slot : slots_) {
      Result<UniqueFd> fd = BindListener(address_, spec_.host, true);
      if (!fd.ok()) return fd.status().WithContext("service " + spec_.name);
      slot.listen = std::move(*fd);
      if (port_ == 0) {
        // Port 0: the first socket picks the port; the others join it.
        port_ = LocalPort(slot.listen.get());
        Result<SocketAddress> fixed = ResolveHost(spec_.host, port_);
        if (!fixed.ok()) return fixed.status();
        address_ = *fixed;
      }
    }
  } else {
    Result<UniqueFd> fd = BindListener(address_, spec_.host, false);
    if (!fd.ok()) return fd.status().WithContext("service " + spec_.name);
    shared_listen_ = std::move(*fd);
    port_ = LocalPort(shared_listen_.get());
    Result<SocketAddress> fixed = ResolveHost(spec_.host, port_);
    if (!fixed.ok()) return fixed.status();
    address_ = *fixed;
  }
  if (!spec_.log_path.empty()) {
    log_.Reset(::open(spec_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!log_.valid()) return ErrnoError("service " + spec_.name + ": " + spec_.log_path.string(), errno);
  }
  DROVER_RETURN_IF_ERROR(OpenEpollWithWake(epoll_, wake_, kWakeToken));
  if (spec_.mode == ListenMode::kRoundRobin) {
    if (::fcntl(shared_listen_.get(), F_SETFL, O_NONBLOCK) != 0) return ErrnoError("fcntl", errno);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenToken;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, shared_listen_.get(), &ev) != 0) {
      return ErrnoError("epoll_ctl", errno);
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    for (int i = 0; i < spec_.instances; ++i) {
      Result<std::shared_ptr<Instance>> instance = SpawnLocked(i);
      if (!instance.ok()) {
        // A launch error (command not found, a bad cwd) is the same for
        // every instance: report it rather than a service that never runs.
        std::vector<std::shared_ptr<Instance>> dead = KillAllNowLocked();
        lock.unlock();
        dead.clear();
        return instance.status();
      }
      slots_[static_cast<size_t>(i)].current = *instance;
    }
  }
  reactor_ = std::thread([this] { RunReactor(); });
  return Status::Ok();
}

Result<std::shared_ptr<Instance>> ServiceImpl::SpawnLocked(int slot_index) {
  Slot& slot = slots_[static_cast<size_t>(slot_index)];
  InstanceLaunch launch;
  launch.command = spec_.command;
  launch.env = spec_.env;
  launch.cwd = spec_.cwd;
  launch.log_fd = log_.valid() ? log_.get() : -1;
  UniqueFd theirs;
  auto instance = std::make_shared<Instance>();
  if (spec_.mode == ListenMode::kRoundRobin) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
      return ErrnoError("socketpair", errno);
    }
    instance->channel.Reset(pair[0]);
    theirs.Reset(pair[1]);
    ::fcntl(instance->channel.get(), F_SETFL, O_NONBLOCK);
    launch.socket_fd = theirs.get();
    launch.handoff = true;
  } else if (spec_.mode == ListenMode::kReuseport) {
    launch.socket_fd = slot.listen.get();
  } else {
    launch.socket_fd = shared_listen_.get();
  }
  Result<LaunchedInstance> launched = LaunchInstance(launch);
  if (!launched.ok()) {
    return launched.status().WithContext("service " + spec_.name + ": instance " +
                                         std::to_string(slot_index));
  }
  instance->id = next_id_++;
  instance->slot = slot_index;
  instance->pid = launched->pid;
  instance->pidfd = std::move(launched->pidfd);
  instance->err = std::move(launched->err);
  instance->started = clock_.Now();

  auto add = [&](int fd, uint64_t kind, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = Token(instance->id, kind);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      spdlog::error("service {}: epoll_ctl: {}", spec_.name, std::strerror(errno));
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
  target.host = spec_.host;
  target.port = port_;
  target.address = address_;
  target.handoff_fd = probe_channel.get();
  target.any_instance = spec_.mode == ListenMode::kShared;
  // A plain pointer: the Instance outlives its checker, whose thread is
  // joined (by the reactor, or by ~Instance) before the Instance goes.
  instance->checker = std::thread(
      [this, raw = instance.get(), target, channel = std::move(probe_channel)]() mutable {
        RunChecker(raw, target, std::move(channel));
      });
  return instance;
}

void ServiceImpl::RunChecker(Instance* instance, ProbeTarget target,
                             UniqueFd channel) {
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + spec_.ready.timeout;
  auto pause = std::chrono::milliseconds(5);
  Status last = Unavailable("no probe finished in time");
  while (!instance->stop_check.load()) {
    auto attempt_deadline = std::min(deadline, std::chrono::steady_clock::now() +
                                                   std::chrono::seconds(2));
    last = ProbeOnce(target, spec_.ready, attempt_deadline, instance->stop_check);
    if (last.ok() || last.code() == StatusCode::kCancelled) break;
    if (std::chrono::steady_clock::now() + pause >= deadline) break;
    // Between probes: a pause (growing to 100 ms) that a stop cuts short.
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, pause, [&] { return instance->stop_check.load(); });
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
  channel.Reset();
  std::lock_guard<std::mutex> lock(mu_);
  if (instance->stop_check.load() || instance->exited) return;
  if (last.ok()) {
    instance->ready = true;
    slots_[static_cast<size_t>(instance->slot)].ever_ready = true;
    if (AllReadyLocked()) failure_.reset();
    spdlog::debug("{}: ready", InstanceName(*instance));
  } else {
    instance->gave_up = true;
    instance->check_error = last.message();
    failure_ = DeadlineExceeded(InstanceName(*instance) + " is not ready after " +
                                FormatDuration(spec_.ready.timeout) + ": " + last.message());
    spdlog::warn("{}", failure_->message());
  }
  cv_.notify_all();
  if (spec_.mode == ListenMode::kRoundRobin) Wake();  // pending connections may go now
}

bool ServiceImpl::AllReadyLocked() const {
  for (const Slot& slot : slots_) {
    if (!slot.current || !slot.current->ready) return false;
  }
  return true;
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
    ::kill(-instance->pid, SIGKILL);
    ::kill(instance->pid, SIGKILL);
    while (::waitpid(instance->pid, nullptr, 0) < 0 && errno == EINTR) {
    }
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
  // come; it still reads those already queued.
  CloseLocked(instance->channel);
  ::kill(instance->pid, SIGTERM);
  instance->kill_at = clock_.Now() + drain;
  Wake();
}

void ServiceImpl::ReadStderrLocked(Instance& instance) {
  char buf[16384];
  while (instance.err.valid()) {
    ssize_t n = ::read(instance.err.get(), buf, sizeof(buf));
    if (n > 0) {
      if (log_.valid()) {
        ssize_t ignored = ::write(log_.get(), buf, static_cast<size_t>(n));
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

void ServiceImpl::OnExitLocked(const std::shared_ptr<Instance>& instance) {
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
  CloseLocked(instance->pidfd);
  CloseLocked(instance->err);
  CloseLocked(instance->channel);
  running_.erase(instance->id);
  finished_.push_back(instance);
  cv_.notify_all();

  Slot& slot = slots_[static_cast<size_t>(instance->slot)];
  if (instance->retiring || stopping_) return;
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
  const SteadyTime now = clock_.Now();
  if (now - instance->started < spec_.backoff_reset) {
    ++slot.fast_exits;
  } else {
    slot.fast_exits = 1;
  }
  Duration delay{0};
  if (slot.fast_exits >= 2) {
    delay = spec_.backoff_initial;
    for (int i = 2; i < slot.fast_exits && delay < spec_.backoff_max; ++i) delay *= 2;
    delay = std::min(delay, spec_.backoff_max);
  }
  slot.respawn_at = now + delay;
  if (delay > Duration::zero()) {
    spdlog::warn("{} exited ({}), crash-looping: {} exits within {} of starting; restart in {}",
                 InstanceName(*instance), instance->exit_text, slot.fast_exits,
                 FormatDuration(spec_.backoff_reset), FormatDuration(delay));
  } else {
    spdlog::warn("{} exited ({}); restarting", InstanceName(*instance), instance->exit_text);
  }
}

void ServiceImpl::TimersLocked(SteadyTime now) {
  for (auto& [id, instance] : running_) {
    if (instance->kill_at && now >= *instance->kill_at) {
      ::kill(-instance->pid, SIGKILL);
      ::kill(instance->pid, SIGKILL);  // in case it left its group
      instance->kill_at.reset();
    }
  }
  if (stopping_) return;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (!slot.respawn_at || now < *slot.respawn_at) continue;
    slot.respawn_at.reset();
    Result<std::shared_ptr<Instance>> instance = SpawnLocked(static_cast<int>(i));
    if (instance.ok()) {
      slot.current = *instance;
      ++slot.restarts;
    } else {
      failure_ = instance.status();
      spdlog::error("{}", instance.status().message());
      slot.respawn_at = now + spec_.backoff_max;
    }
  }
}

bool ServiceImpl::RouteLocked(int conn) {
  const size_t n = slots_.size();
  for (size_t tried = 0; tried < n; ++tried) {
    Slot& slot = slots_[rr_next_ % n];
    rr_next_ = (rr_next_ + 1) % n;
    const std::shared_ptr<Instance>& instance = slot.current;
    if (!instance || !instance->ready || instance->retiring || !instance->channel.valid()) continue;
    if (drover_handoff_send(instance->channel.get(), conn) == 0) {
      ++slot.connections;
      ::close(conn);
      return true;
    }
  }
  return false;
}

void ServiceImpl::AcceptLocked() {
  if (stopping_) return;
  for (int i = 0; i < kMaxAcceptsPerWake && !listen_paused_; ++i) {
    int conn = ::accept4(shared_listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) spdlog::warn("service {}: accept: {}", spec_.name, std::strerror(errno));
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
  while (!pending_.empty() && RouteLocked(pending_.front())) pending_.pop_front();
  UpdateInterestLocked();
}

void ServiceImpl::UpdateInterestLocked() {
  if (spec_.mode != ListenMode::kRoundRobin || stopping_) return;
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
    set(instance->channel.get(), Token(id, kChannelKind), want ? static_cast<uint32_t>(EPOLLOUT) : 0u);
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
      spdlog::error("service {}: epoll_wait: {}", spec_.name, std::strerror(errno));
    }
    std::vector<std::shared_ptr<Instance>> finished;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int i = 0; i < n; ++i) {
        const uint64_t token = events[i].data.u64;
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
      TimersLocked(clock_.Now());
      if (spec_.mode == ListenMode::kRoundRobin) FlushPendingLocked();
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

Status ServiceImpl::WaitReady(Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  cv_.wait_until(lock, deadline, [&] { return stopping_ || failure_ || AllReadyLocked(); });
  if (AllReadyLocked()) return Status::Ok();
  if (failure_) return *failure_;
  if (stopping_) return Cancelled("service " + spec_.name + " is shut down");
  std::string why;
  for (const Slot& slot : slots_) {
    if (slot.current && !slot.current->ready) {
      why = InstanceName(*slot.current) + " is not ready yet";
      break;
    }
    if (!slot.current) {
      why = "an instance is waiting to be restarted after " + slot.last_exit;
      break;
    }
  }
  return DeadlineExceeded("service " + spec_.name + ": not ready after " +
                          FormatDuration(timeout) + ": " + why);
}

Status ServiceImpl::Reload() {
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  std::unique_lock<std::mutex> lock(mu_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (stopping_) return Cancelled("service " + spec_.name + " is shut down");
    Slot& slot = slots_[i];
    Result<std::shared_ptr<Instance>> spawned = SpawnLocked(static_cast<int>(i));
    if (!spawned.ok()) return spawned.status().WithContext("reload");
    std::shared_ptr<Instance> fresh = *spawned;
    slot.incoming = fresh;
    cv_.wait(lock, [&] { return stopping_ || fresh->ready || fresh->exited || fresh->gave_up; });
    slot.incoming.reset();
    if (!fresh->ready) {
      std::string why = fresh->exited ? "exited: " + fresh->exit_text +
                                            (Tail(fresh->err_tail).empty() ? "" : "; stderr: " + Tail(fresh->err_tail))
                                      : fresh->check_error;
      if (!fresh->exited) {
        fresh->retiring = true;
        fresh->stop_check = true;
        fresh->kill_at = clock_.Now();
        Wake();
      }
      if (stopping_) return Cancelled("service " + spec_.name + " is shut down");
      return Unavailable("reload of service " + spec_.name + " stopped at instance " +
                         std::to_string(i) + ": its replacement (pid " + std::to_string(fresh->pid) +
                         ") " + why + "; the old instances keep serving");
    }
    std::shared_ptr<Instance> old = std::move(slot.current);
    slot.current = fresh;
    slot.respawn_at.reset();
    RetireLocked(old, spec_.drain);
    if (spec_.mode == ListenMode::kRoundRobin) Wake();
  }
  return Status::Ok();
}

void ServiceImpl::Shutdown(Duration grace) {
  std::call_once(shutdown_once_, [&] {
    std::unique_lock<std::mutex> lock(mu_);
    if (!reactor_.joinable()) {  // Init failed, or never ran
      std::vector<std::shared_ptr<Instance>> dead = KillAllNowLocked();
      lock.unlock();
      return;
    }
    stopping_ = true;
    if (spec_.mode == ListenMode::kRoundRobin) {
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, shared_listen_.get(), nullptr);
    }
    for (int conn : pending_) ::close(conn);
    pending_.clear();
    for (auto& [id, instance] : running_) RetireLocked(instance, grace);
    for (auto& [id, instance] : running_) instance->kill_at = clock_.Now() + grace;
    Wake();
    cv_.notify_all();
    // Bounded: the reactor SIGKILLs at the deadline and reaps what it kills.
    cv_.wait(lock, [&] { return reactor_done_; });
    lock.unlock();
    if (reactor_.joinable()) reactor_.join();
    finished_.clear();
  });
}

std::vector<InstanceStats> ServiceImpl::Instances() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<InstanceStats> stats;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    InstanceStats s;
    s.slot = static_cast<int>(i);
    s.pid = slot.current ? slot.current->pid : 0;
    s.restarts = slot.restarts;
    s.connections = slot.connections;
    s.ready = slot.current && slot.current->ready;
    s.last_exit = slot.last_exit;
    stats.push_back(s);
  }
  return stats;
}

std::string ServiceImpl::DescribeLocked() const {
  int ready = 0;
  uint64_t restarts = 0;
  std::string looping;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    if (slot.current && slot.current->ready) ++ready;
    restarts += slot.restarts;
    if (slot.respawn_at && slot.fast_exits >= 2) {
      looping += ", instance " + std::to_string(i) + " crash-looping (last: " + slot.last_exit + ")";
    }
  }
  return spec_.name + ": " + std::to_string(slots_.size()) + " instance" +
         (slots_.size() == 1 ? "" : "s") + " of `" + CommandText(spec_.command) + "` on " +
         HostPort(spec_.host, port_) + " (" + std::string(ListenModeName(spec_.mode)) + "), " +
         std::to_string(ready) + " ready, " + std::to_string(restarts) + " restart" +
         (restarts == 1 ? "" : "s") + looping;
}

std::string ServiceImpl::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  return DescribeLocked();
}

}  // namespace

Result<std::unique_ptr<Service>> Service::Start(ServiceSpec spec, const Clock& clock) {
  if (spec.name.empty()) spec.name = "service";
  auto service = std::make_unique<ServiceImpl>(std::move(spec), clock);
  Status status = service->Init();
  if (!status.ok()) return status;
  return std::unique_ptr<Service>(std::move(service));
}

}  // namespace drover::cluster
