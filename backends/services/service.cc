// The service supervisor's public side: Start (binding the sockets and
// spawning the first instances), WaitReady, Shutdown and the stats. The
// reactor is in service_reactor.cc, Reload in service_reload.cc; the
// locking rules are in service_internal.h.
#include "backends/services/service.h"

#include <fcntl.h>
#include <sys/epoll.h>

#include <algorithm>

#include "backends/services/service_internal.h"
#include "backends/process/epoll_wake.h"

namespace drover::services {

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

namespace internal {

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

ServiceImpl::ServiceImpl(ServiceSpec spec, const Clock& clock,
                         std::shared_ptr<Guardian> guardian)
    : name_(spec.name),
      host_(spec.host),
      mode_(spec.mode),
      clock_(clock),
      guardian_(std::move(guardian)) {
  auto gen = std::make_shared<Generation>();
  gen->spec = std::move(spec);
  gen->log = std::make_shared<UniqueFd>();
  gen_ = std::move(gen);
}

ServiceImpl::~ServiceImpl() {
  Duration grace;
  {
    std::lock_guard<std::mutex> lock(mu_);
    grace = gen_->spec.kill_grace;
  }
  Shutdown(grace);
}

std::string ServiceImpl::InstanceName(const Instance& instance) const {
  return "service " + name_ + ": instance " + std::to_string(instance.slot) + " (pid " +
         std::to_string(instance.pid) + ")";
}

Status ServiceImpl::Init() {
  const ServiceSpec& spec = gen_->spec;  // no other thread runs yet
  if (spec.command.empty()) return InvalidArgument("service " + name_ + ": empty command");
  if (spec.instances < 1 || spec.instances > 1024) {
    return InvalidArgument("service " + name_ + ": instances must be 1-1024, not " +
                           std::to_string(spec.instances));
  }
  Result<SocketAddress> address = ResolveHost(host_, spec.port);
  if (!address.ok()) return address.status().WithContext("service " + name_);
  address_ = *address;
  slots_.resize(static_cast<size_t>(spec.instances));
  if (mode_ == ListenMode::kReuseport) {
    for (Slot& slot : slots_) {
      Result<UniqueFd> fd = BindListener(address_, host_, true);
      if (!fd.ok()) return fd.status().WithContext("service " + name_);
      slot.listen = std::move(*fd);
      if (port_ == 0) {
        // Port 0: the first socket picks the port; the others join it.
        port_ = LocalPort(slot.listen.get());
        Result<SocketAddress> fixed = ResolveHost(host_, port_);
        if (!fixed.ok()) return fixed.status();
        address_ = *fixed;
      }
    }
  } else {
    Result<UniqueFd> fd = BindListener(address_, host_, false);
    if (!fd.ok()) return fd.status().WithContext("service " + name_);
    shared_listen_ = std::move(*fd);
    port_ = LocalPort(shared_listen_.get());
    Result<SocketAddress> fixed = ResolveHost(host_, port_);
    if (!fixed.ok()) return fixed.status();
    address_ = *fixed;
  }
  auto gen = std::make_shared<Generation>(*gen_);
  gen->spec.port = port_;
  if (!spec.log_path.empty()) {
    gen->log = std::make_shared<UniqueFd>(
        ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!gen->log->valid()) {
      return ErrnoError("service " + name_ + ": " + spec.log_path.string(), errno);
    }
  }
  DROVER_RETURN_IF_ERROR(OpenEpollWithWake(epoll_, wake_, kWakeToken));
  if (mode_ == ListenMode::kRoundRobin) {
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
    gen_ = gen;
    for (size_t i = 0; i < slots_.size(); ++i) {
      slots_[i].gen = gen;
      Result<std::shared_ptr<Instance>> instance = SpawnLocked(static_cast<int>(i), gen);
      if (!instance.ok()) {
        // A launch error (command not found, a bad cwd) is the same for
        // every instance: report it rather than a service that never runs.
        std::vector<std::shared_ptr<Instance>> dead = KillAllNowLocked();
        lock.unlock();
        dead.clear();
        return instance.status();
      }
      slots_[i].current = *instance;
    }
  }
  reactor_ = std::thread([this] { RunReactor(); });
  return Status::Ok();
}

bool ServiceImpl::AllReadyLocked() const {
  for (const Slot& slot : slots_) {
    if (slot.joining) continue;
    if (!slot.current || !slot.current->ready) return false;
  }
  return true;
}

Status ServiceImpl::WaitReady(Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  cv_.wait_until(lock, deadline, [&] { return stopping_ || failure_ || AllReadyLocked(); });
  if (AllReadyLocked()) return Status::Ok();
  if (failure_) return *failure_;
  if (stopping_) return Cancelled("service " + name_ + " is shut down");
  std::string why;
  for (const Slot& slot : slots_) {
    if (slot.joining) continue;
    if (slot.current && !slot.current->ready) {
      why = InstanceName(*slot.current) + " is not ready yet";
      break;
    }
    if (!slot.current) {
      why = "an instance is waiting to be restarted after " + slot.last_exit;
      break;
    }
  }
  return DeadlineExceeded("service " + name_ + ": not ready after " + FormatDuration(timeout) +
                          ": " + why);
}

ServiceSpec ServiceImpl::spec() const {
  std::lock_guard<std::mutex> lock(mu_);
  return gen_->spec;
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
    if (mode_ == ListenMode::kRoundRobin) {
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
    if (slot.joining) continue;
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
  size_t count = 0;
  uint64_t restarts = 0;
  std::string looping;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    if (slot.joining) continue;
    ++count;
    if (slot.current && slot.current->ready) ++ready;
    restarts += slot.restarts;
    if (slot.respawn_at && slot.fast_exits >= 2) {
      looping += ", instance " + std::to_string(i) +
                 " crash-looping (last: " + slot.last_exit + ")";
    }
  }
  return name_ + ": " + std::to_string(count) + " instance" + (count == 1 ? "" : "s") + " of `" +
         CommandText(gen_->spec.command) + "` on " + HostPort(host_, port_) + " (" +
         std::string(ListenModeName(mode_)) + "), " + std::to_string(ready) + " ready, " +
         std::to_string(restarts) + " restart" + (restarts == 1 ? "" : "s") + looping;
}

std::string ServiceImpl::Describe() const {
  std::lock_guard<std::mutex> lock(mu_);
  return DescribeLocked();
}

}  // namespace internal

Result<std::unique_ptr<Service>> Service::Start(ServiceSpec spec, const Clock& clock,
                                                std::shared_ptr<Guardian> guardian) {
  if (spec.name.empty()) spec.name = "service";
  auto service = std::make_unique<internal::ServiceImpl>(std::move(spec), clock,
                                                         std::move(guardian));
  Status status = service->Init();
  if (!status.ok()) return status;
  return std::unique_ptr<Service>(std::move(service));
}

}  // namespace drover::services
