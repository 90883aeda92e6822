#include "backends/services/service_registry.h"

#include <unistd.h>

#include <algorithm>
#include <thread>

namespace drover::services {
namespace {

// WaitReady's bound beyond the per-instance ready timeout: spawning the
// instances and the supervisor's own checks take a moment too.
constexpr Duration kReadyMargin = std::chrono::seconds(2);
// The job id of the worker's own services: no job has it.
constexpr std::string_view kWorkerJob = "";

// "FILE:LINE:COL" of a worker's own service's declaration, for messages.
std::string Origin(const spec::ServiceDecl& decl) {
  return decl.where.file + ":" + std::to_string(decl.where.line) + ":" +
         std::to_string(decl.where.column);
}

// The path of the running executable, or "" when it cannot be read.
std::string SelfExe() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

}  // namespace

std::string ConnectableHost(std::string_view listen_host) {
  if (listen_host.empty() || listen_host == "0.0.0.0") return "127.0.0.1";
  if (listen_host == "::" || listen_host == "[::]") return "::1";
  return std::string(listen_host);
}

Result<ServiceSpec> ToServiceSpec(const spec::ServiceDecl& config) {
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
                                       const std::vector<spec::ServiceDecl>& configs,
                                       const std::vector<std::string>& worker_names) {
  Lease lease;
  lease.job_id = job_id;
  std::unique_lock<std::mutex> lock(mu_);
  auto fail = [&](Status status) -> Result<Lease> {
    ReleaseLocked(lease);
    return status;
  };
  for (const spec::ServiceDecl& config : configs) {
    const Key key{job_id, config.name};
    if (shut_down_) {
      return fail(Unavailable("service '" + config.name + "': the worker is shutting down"));
    }
    const auto found = entries_.find(key);
    if (found == entries_.end()) {
      auto entry = std::make_shared<Entry>();
      entry->idle_timeout = config.idle_timeout;
      entries_[key] = entry;
      lock.unlock();
      const Status started = StartOne(key, config, entry, /*users=*/1);
      lock.lock();
      if (!started.ok()) return fail(started);
      lease.addresses[config.name] = entry->address;
    } else {
      const std::shared_ptr<Entry> entry = found->second;
      if (Status joined = JoinLocked(lock, config.name, entry); !joined.ok()) {
        return fail(joined);
      }
      lease.addresses[config.name] = entry->address;
    }
    lease.names.push_back(config.name);
  }
  for (const std::string& name : worker_names) {
    if (shut_down_) return fail(Unavailable("service '" + name + "': the worker is shutting down"));
    const auto found = entries_.find(Key{std::string(kWorkerJob), name});
    if (found == entries_.end()) {
      return fail(NotFound("the worker runs no service '" + name + "'"));
    }
    const std::shared_ptr<Entry> entry = found->second;
    if (Status joined = JoinLocked(lock, name, entry); !joined.ok()) return fail(joined);
    lease.worker_names.push_back(name);
    lease.addresses[name] = entry->address;
  }
  return lease;
}

Status ServiceRegistry::JoinLocked(std::unique_lock<std::mutex>& lock, const std::string& name,
                                   const std::shared_ptr<Entry>& entry) {
  // Bounded: the thread starting it settles the state within the service's
  // ready timeout, and Shutdown wakes everyone.
  cv_.wait(lock, [&] { return entry->state != Entry::State::kStarting || shut_down_; });
  if (entry->state == Entry::State::kFailed) return entry->error;
  if (entry->state != Entry::State::kReady || shut_down_) {
    return Unavailable("service '" + name + "': the worker is shutting down");
  }
  ++entry->users;
  return Status::Ok();
}

std::optional<Lease> ServiceRegistry::TryAcquire(const std::string& job_id,
                                                 const std::vector<spec::ServiceDecl>& configs,
                                                 const std::vector<std::string>& worker_names) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return std::nullopt;
  std::vector<std::pair<std::string, Entry*>> ready;
  auto find_ready = [&](const Key& key) {
    const auto found = entries_.find(key);
    if (found == entries_.end() || found->second->state != Entry::State::kReady) return false;
    ready.emplace_back(key.second, found->second.get());
    return true;
  };
  for (const spec::ServiceDecl& config : configs) {
    if (!find_ready(Key{job_id, config.name})) return std::nullopt;
  }
  for (const std::string& name : worker_names) {
    if (!find_ready(Key{std::string(kWorkerJob), name})) return std::nullopt;
  }
  Lease lease;
  lease.job_id = job_id;
  for (size_t i = 0; i < ready.size(); ++i) {
    auto& [name, entry] = ready[i];
    ++entry->users;
    (i < configs.size() ? lease.names : lease.worker_names).push_back(name);
    lease.addresses[name] = entry->address;
  }
  return lease;
}

Status ServiceRegistry::StartOne(const Key& key, const spec::ServiceDecl& config,
                                 const std::shared_ptr<Entry>& entry, int users) {
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
  auto started = Service::Start(*spec, clock_, guardian_);
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
  std::unique_lock<std::mutex> lock(mu_);
  if (shut_down_) {
    entry->state = Entry::State::kFailed;
    entry->error = Unavailable(what + ": the worker is shutting down");
    cv_.notify_all();
    return entry->error;
  }
  if (entry->job_done) {
    lock.unlock();
    service->Shutdown(entry->kill_grace);
    return fail(Cancelled(what + ": job " + key.first + " ended while it started"));
  }
  entry->state = Entry::State::kReady;
  entry->address = ServiceAddress{ConnectableHost(config.host), service->port()};
  entry->users = users;
  cv_.notify_all();
  return Status::Ok();
}

void ServiceRegistry::Release(const Lease& lease) {
  std::lock_guard<std::mutex> lock(mu_);
  ReleaseLocked(lease);
}

void ServiceRegistry::ReleaseLocked(const Lease& lease) {
  ReleaseLocked(lease.job_id, lease.names);
  ReleaseLocked(std::string(kWorkerJob), lease.worker_names);
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
      if (!entry.pinned && entry.state == Entry::State::kReady && entry.users == 0 &&
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
    if (entry->pinned || entry->state != Entry::State::kReady || entry->users > 0) continue;
    const SteadyTime at = entry->idle_since + entry->idle_timeout;
    if (!next || at < *next) next = at;
  }
  return next;
}

void ServiceRegistry::Shutdown(Duration grace) {
  std::vector<std::pair<std::shared_ptr<Service>, Duration>> stop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    for (auto& [key, entry] : entries_) {
      if (entry->service) stop.emplace_back(entry->service, grace);
    }
    entries_.clear();
    cv_.notify_all();
  }
  StopAll(std::move(stop));
}

void ServiceRegistry::StopAll(std::vector<std::pair<std::shared_ptr<Service>, Duration>> stop) {
  if (stop.size() == 1) return stop.front().first->Shutdown(stop.front().second);
  // In parallel: each takes up to its grace, and they are independent.
  std::vector<std::thread> stoppers;
  stoppers.reserve(stop.size());
  for (auto& [service, grace] : stop) {
    stoppers.emplace_back([service = service, grace = grace] { service->Shutdown(grace); });
  }
  for (std::thread& t : stoppers) t.join();
}

Status ServiceRegistry::StartWorkerService(const spec::ServiceDecl& service) {
  const Key key{std::string(kWorkerJob), service.name};
  const std::string origin = Origin(service);
  auto entry = std::make_shared<Entry>();
  entry->pinned = true;
  entry->config = service;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) {
      return Unavailable("service '" + key.second + "': the worker is shutting down");
    }
    if (!entries_.emplace(key, entry).second) {
      return AlreadyExists(origin + ": service '" + key.second + "' already runs");
    }
  }
  return StartOne(key, service, entry, /*users=*/0)
      .WithContext(origin + ": the worker's own service");
}

std::vector<std::string> ServiceRegistry::WorkerServiceNames() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (const auto& [key, entry] : entries_) {
    if (entry->pinned) names.push_back(key.second);  // the map keeps them sorted
  }
  return names;
}

namespace {

// Whether a running service must be replaced to run `b` instead of `a`
// (idle_timeout means nothing to a worker's own service).
bool SameRun(const spec::ServiceDecl& a, const spec::ServiceDecl& b) {
  return a.command == b.command && a.instances == b.instances && a.ready == b.ready &&
         a.ready_path == b.ready_path && a.ready_timeout == b.ready_timeout &&
         a.env == b.env && a.cwd == b.cwd && a.host == b.host && a.port == b.port &&
         a.mode == b.mode;
}

}  // namespace

std::vector<Status> ServiceRegistry::UpdateWorkerServices(
    const std::vector<spec::ServiceDecl>& next) {
  std::vector<Status> errors;
  std::map<std::string, std::shared_ptr<Entry>> current;
  std::vector<std::pair<std::shared_ptr<Service>, Duration>> stop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return {Unavailable("the worker is shutting down")};
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (!it->second->pinned) {
        ++it;
        continue;
      }
      const bool kept = std::any_of(next.begin(), next.end(), [&](const spec::ServiceDecl& s) {
        return s.name == it->first.second;
      });
      if (kept) {
        current.emplace(it->first.second, it->second);
        ++it;
      } else {
        if (it->second->service) stop.emplace_back(it->second->service, it->second->kill_grace);
        it = entries_.erase(it);
      }
    }
  }
  StopAll(std::move(stop));
  for (const spec::ServiceDecl& want : next) {
    const std::string& name = want.name;
    const std::string origin = Origin(want);
    const auto found = current.find(name);
    if (found == current.end()) {
      if (Status s = StartWorkerService(want); !s.ok()) errors.push_back(s);
      continue;
    }
    const std::shared_ptr<Entry>& entry = found->second;
    spec::ServiceDecl running;
    std::shared_ptr<Service> service;
    {
      std::lock_guard<std::mutex> lock(mu_);
      running = entry->config;
      service = entry->service;
      if (SameRun(running, want)) entry->config = want;  // its new origin
    }
    if (SameRun(running, want) || service == nullptr) continue;
    if (running.host != want.host || running.port != want.port || running.mode != want.mode) {
      errors.push_back(FailedPrecondition(
          origin + ": service '" + name + "' changes its listen address or mode (" +
          running.host + ":" + std::to_string(running.port) + " " + running.mode + " -> " +
          want.host + ":" + std::to_string(want.port) + " " + want.mode +
          "), which needs a worker restart; the running one is kept"));
      continue;
    }
    auto spec = ToServiceSpec(want);
    if (!spec.ok()) {
      errors.push_back(spec.status().WithContext(origin));
      continue;
    }
    if (Status s = service->Reload(*spec); !s.ok()) {
      errors.push_back(s.WithContext(origin + ": service '" + name + "' reload"));
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    entry->config = want;
  }
  return errors;
}

int ServiceRegistry::StopJob(const std::string& job_id) {
  if (job_id == kWorkerJob) return 0;
  std::vector<std::pair<std::shared_ptr<Service>, Duration>> stop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = entries_.lower_bound(Key{job_id, ""});
         it != entries_.end() && it->first.first == job_id;) {
      if (it->second->state == Entry::State::kReady) {
        stop.emplace_back(it->second->service, it->second->kill_grace);
        it = entries_.erase(it);
      } else {
        it->second->job_done = true;  // starting: StartOne stops it when started
        ++it;
      }
    }
  }
  const int n = static_cast<int>(stop.size());
  StopAll(std::move(stop));
  return n;
}

std::vector<ReloadOutcome> ServiceRegistry::Reload(const std::string& job_id,
                                                   const std::string& name) {
  std::vector<std::pair<std::string, std::shared_ptr<Service>>> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, entry] : entries_) {
      if (key.second != name || entry->state != Entry::State::kReady) continue;
      if (!job_id.empty() && key.first != job_id) continue;
      targets.emplace_back(key.first, entry->service);
    }
  }
  std::vector<ReloadOutcome> outcomes;
  for (auto& [job, service] : targets) {
    ReloadOutcome& o = outcomes.emplace_back();
    o.job_id = job;
    o.name = name;
    o.status = service->Reload();
    o.describe = service->Describe();
  }
  return outcomes;
}

size_t ServiceRegistry::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace drover::services
