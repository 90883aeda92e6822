#include "backends/cluster/service_registry.h"

#include <unistd.h>

#include <thread>

namespace drover::cluster {
namespace {

// WaitReady's bound beyond the per-instance ready timeout: spawning the
// instances and the supervisor's own checks take a moment too.
constexpr Duration kReadyMargin = std::chrono::seconds(2);

// The path of the running executable, or "" when it cannot be read.
std::string SelfExe() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

}  // namespace

Result<ServiceSpec> ToServiceSpec(const ServiceConfig& config) {
  ServiceSpec spec;
  spec.name = config.name;
  spec.command = config.command;
  // `command: [drover, serve, hello]` means this drover, wherever it is
  // installed and whether or not it is in PATH, when this process is drover.
  if (!spec.command.empty() && spec.command.front() == "drover") {
    const std::string self = SelfExe();
    if (std::filesystem::path(self).filename() == "drover") spec.command.front() = self;
  }
  spec.instances = config.instances;
  spec.host = config.host;
  spec.port = config.port;
  auto mode = ParseListenMode(config.mode);
  if (!mode.ok()) return mode.status().WithContext("service " + config.name);
  spec.mode = *mode;
  spec.ready.kind = config.ready == "http" ? ReadyCheck::Kind::kHttp : ReadyCheck::Kind::kTcp;
  if (!config.ready_path.empty()) spec.ready.http_path = config.ready_path;
  spec.ready.timeout = config.ready_timeout;
  spec.env = config.env;
  spec.cwd = config.cwd;
  return spec;
}

Result<Lease> ServiceRegistry::Acquire(const std::string& job_id,
                                       const std::vector<ServiceConfig>& configs) {
  Lease lease;
  lease.job_id = job_id;
  std::unique_lock<std::mutex> lock(mu_);
  for (const ServiceConfig& config : configs) {
    const Key key{job_id, config.name};
    if (shut_down_) {
      ReleaseLocked(job_id, lease.names);
      return Unavailable("service '" + config.name + "': the worker is shutting down");
    }
    std::shared_ptr<Entry> entry;
    const auto found = entries_.find(key);
    if (found == entries_.end()) {
      entry = std::make_shared<Entry>();
      entry->idle_timeout = config.idle_timeout;
      entries_[key] = entry;
      lock.unlock();
      const Status started = StartOne(key, config, entry);
      lock.lock();
      if (!started.ok()) {
        ReleaseLocked(job_id, lease.names);
        return started;
      }
    } else {
      entry = found->second;
      // Bounded: the thread starting it settles the state within the
      // service's ready timeout, and Shutdown wakes everyone.
      cv_.wait(lock, [&] { return entry->state != Entry::State::kStarting || shut_down_; });
      if (entry->state == Entry::State::kFailed) {
        ReleaseLocked(job_id, lease.names);
        return entry->error;
      }
      if (entry->state != Entry::State::kReady) {
        ReleaseLocked(job_id, lease.names);
        return Unavailable("service '" + config.name + "': the worker is shutting down");
      }
      ++entry->users;
    }
    lease.names.push_back(config.name);
    lease.addresses[config.name] = entry->address;
  }
  return lease;
}

std::optional<Lease> ServiceRegistry::TryAcquire(const std::string& job_id,
                                                 const std::vector<ServiceConfig>& configs) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return std::nullopt;
  std::vector<Entry*> ready;
  for (const ServiceConfig& config : configs) {
    const auto found = entries_.find(Key{job_id, config.name});
    if (found == entries_.end() || found->second->state != Entry::State::kReady) {
      return std::nullopt;
    }
    ready.push_back(found->second.get());
  }
  Lease lease;
  lease.job_id = job_id;
  for (size_t i = 0; i < configs.size(); ++i) {
    ++ready[i]->users;
    lease.names.push_back(configs[i].name);
    lease.addresses[configs[i].name] = ready[i]->address;
  }
  return lease;
}

Status ServiceRegistry::StartOne(const Key& key, const ServiceConfig& config,
                                 const std::shared_ptr<Entry>& entry) {
  const std::string what = "service '" + config.name + "'";
  auto fail = [&](Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    entry->state = Entry::State::kFailed;
    entry->error = status;
    // Forgotten, so that a later attempt (a retry) starts it afresh.
    const auto found = entries_.find(key);
    if (found != entries_.end() && found->second == entry) entries_.erase(found);
    cv_.notify_all();
    return status;
  };

  auto spec = ToServiceSpec(config);
  if (!spec.ok()) return fail(spec.status());
  entry->kill_grace = spec->kill_grace;
  auto started = Service::Start(*spec, clock_);
  if (!started.ok()) {
    return fail(FailedPrecondition(what + " did not start: " + started.status().message()));
  }
  std::shared_ptr<Service> service = std::move(started).value();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) {
      service->Shutdown(Duration(0));
      entry->state = Entry::State::kFailed;
      entry->error = Unavailable(what + ": the worker is shutting down");
      cv_.notify_all();
      return entry->error;
    }
    entry->service = service;  // so that Shutdown can stop it while it starts
  }
  const Status ready = service->WaitReady(config.ready_timeout + kReadyMargin);
  if (!ready.ok()) {
    service->Shutdown(std::min<Duration>(entry->kill_grace, std::chrono::seconds(1)));
    return fail(FailedPrecondition(what + " is not serving: " + ready.message()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) {
    entry->state = Entry::State::kFailed;
    entry->error = Unavailable(what + ": the worker is shutting down");
    cv_.notify_all();
    return entry->error;
  }
  entry->state = Entry::State::kReady;
  entry->address = ServiceAddress{ConnectableHost(config.host), service->port()};
  entry->users = 1;
  cv_.notify_all();
  return Status::Ok();
}

void ServiceRegistry::Release(const Lease& lease) {
  std::lock_guard<std::mutex> lock(mu_);
  ReleaseLocked(lease.job_id, lease.names);
}

void ServiceRegistry::ReleaseLocked(const std::string& job_id,
                                    const std::vector<std::string>& names) {
  const SteadyTime now = clock_.Now();
  for (const std::string& name : names) {
    const auto found = entries_.find(Key{job_id, name});
    if (found == entries_.end()) continue;
    Entry& entry = *found->second;
    if (entry.users > 0 && --entry.users == 0) entry.idle_since = now;
  }
}

int ServiceRegistry::StopIdle() {
  std::vector<std::pair<std::shared_ptr<Service>, Duration>> stop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const SteadyTime now = clock_.Now();
    for (auto it = entries_.begin(); it != entries_.end();) {
      const Entry& entry = *it->second;
      if (entry.state == Entry::State::kReady && entry.users == 0 &&
          now - entry.idle_since >= entry.idle_timeout) {
        stop.emplace_back(entry.service, entry.kill_grace);
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [service, grace] : stop) service->Shutdown(grace);
  return static_cast<int>(stop.size());
}

std::optional<SteadyTime> ServiceRegistry::NextIdleDeadline() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<SteadyTime> next;
  for (const auto& [key, entry] : entries_) {
    if (entry->state != Entry::State::kReady || entry->users > 0) continue;
    const SteadyTime at = entry->idle_since + entry->idle_timeout;
    if (!next || at < *next) next = at;
  }
  return next;
}

void ServiceRegistry::Shutdown(Duration grace) {
  std::vector<std::shared_ptr<Service>> stop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    for (auto& [key, entry] : entries_) {
      if (entry->service) stop.push_back(entry->service);
    }
    entries_.clear();
    cv_.notify_all();
  }
  // In parallel: each takes up to `grace`, and they are independent.
  std::vector<std::thread> stoppers;
  stoppers.reserve(stop.size());
  for (auto& service : stop) {
    stoppers.emplace_back([service, grace] { service->Shutdown(grace); });
  }
  for (std::thread& t : stoppers) t.join();
}

size_t ServiceRegistry::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace drover::cluster
