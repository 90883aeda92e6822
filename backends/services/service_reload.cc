// Service::Reload: replaces the instances one at a time, grows and shrinks
// the service, without refusing a connection. Locking: see
// service_internal.h; a reload holds reload_mu_ throughout and mu_ except
// while it waits on cv_.
//
// The order is what keeps every connection served:
//   1. Grow: slots added are started and waited for (all at once) before
//      anything is retired.
//   2. Replace the slots that stay, one at a time: the new instance is
//      ready before the old one gets SIGTERM and `drain`.
//   3. Shrink: the slots removed are retired last. In reuseport mode each
//      has its own socket, whose accept queue is lost when it closes, so
//      first the kernel is told to stop picking those sockets (a reuseport
//      BPF program), their instances empty the queues, and only then are
//      they stopped; the program is removed once they are gone.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/filter.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "backends/services/service_internal.h"

#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68  // Linux 5.8
#endif

namespace drover::services::internal {
namespace {

// After the steering program is attached, a handshake that was already
// under way may still complete into a removed socket's queue; on loopback
// that takes microseconds. Wait this long before trusting an empty queue.
constexpr auto kSteerSettle = std::chrono::milliseconds(50);
constexpr auto kQueuePoll = std::chrono::milliseconds(5);

// The number of connections waiting in a listening socket's accept queue
// (TCP_INFO reports it as tcpi_unacked for a listener), or -1.
int ListenQueueLength(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return -1;
  return static_cast<int>(info.tcpi_unacked);
}

std::string Range(size_t from, size_t to) {  // [from, to)
  if (to == from + 1) return "instance " + std::to_string(from);
  return "instances " + std::to_string(from) + "-" + std::to_string(to - 1);
}

}  // namespace

Status ServiceImpl::Reload() { return Reload(spec()); }

void ServiceImpl::DropLocked(std::vector<std::shared_ptr<Instance>>& instances) {
  finished_.insert(finished_.end(), instances.begin(), instances.end());
  instances.clear();
  Wake();
}

Status ServiceImpl::CheckReloadable(const ServiceSpec& next) const {
  const std::string who = "service " + name_ + ": reload: ";
  const std::string fresh = "; that needs a new service (stop this one, start another)";
  if (next.name != name_) {
    return InvalidArgument(who + "cannot rename it to '" + next.name + "'" + fresh);
  }
  if (next.host != host_) {
    return InvalidArgument(who + "cannot move it from host " + host_ + " to " + next.host + fresh);
  }
  if (next.mode != mode_) {
    return InvalidArgument(who + "cannot change its mode from " +
                           std::string(ListenModeName(mode_)) + " to " +
                           std::string(ListenModeName(next.mode)) + fresh);
  }
  if (next.port != 0 && next.port != port_) {
    return InvalidArgument(who + "cannot move it from port " + std::to_string(port_) + " to " +
                           std::to_string(next.port) + fresh);
  }
  if (next.command.empty()) return InvalidArgument(who + "empty command");
  if (next.instances < 1 || next.instances > 1024) {
    return InvalidArgument(who + "instances must be 1-1024, not " +
                           std::to_string(next.instances));
  }
  return Status::Ok();
}

Result<std::shared_ptr<const Generation>> ServiceImpl::NewGeneration(const ServiceSpec& next) {
  auto gen = std::make_shared<Generation>();
  gen->spec = next;
  gen->spec.port = port_;
  std::shared_ptr<const Generation> current;
  {
    std::lock_guard<std::mutex> lock(mu_);
    current = gen_;
  }
  if (next.log_path == current->spec.log_path) {
    gen->log = current->log;
  } else if (next.log_path.empty()) {
    gen->log = std::make_shared<UniqueFd>();
  } else {
    gen->log = std::make_shared<UniqueFd>(
        ::open(next.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!gen->log->valid()) {
      return ErrnoError("service " + name_ + ": reload: " + next.log_path.string(), errno);
    }
  }
  return std::shared_ptr<const Generation>(std::move(gen));
}

Status ServiceImpl::Reload(const ServiceSpec& next) {
  std::lock_guard<std::mutex> reload_lock(reload_mu_);
  DROVER_RETURN_IF_ERROR(CheckReloadable(next));
  Result<std::shared_ptr<const Generation>> gen = NewGeneration(next);
  if (!gen.ok()) return gen.status();
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return Cancelled("service " + name_ + " is shut down");
  const size_t before = slots_.size();
  const size_t after = static_cast<size_t>(next.instances);
  if (after > before) {
    DROVER_RETURN_IF_ERROR(GrowLocked(lock, *gen, after));
  }
  for (size_t i = 0; i < std::min(before, after); ++i) {
    Status replaced = ReplaceLocked(lock, i, *gen);
    if (!replaced.ok()) {
      std::string done = i == 0 ? "" : "; " + Range(0, i) + " run the new spec";
      if (after > before) done += "; " + Range(before, after) + " were added";
      return replaced.code() == StatusCode::kCancelled ? replaced
                                                       : Unavailable(replaced.message() + done);
    }
  }
  if (after < before) ShrinkLocked(lock, after, next.drain);
  if (stopping_) return Cancelled("service " + name_ + " is shut down");
  gen_ = *gen;
  return Status::Ok();
}

Status ServiceImpl::GrowLocked(std::unique_lock<std::mutex>& lock,
                               const std::shared_ptr<const Generation>& gen, size_t count) {
  const size_t before = slots_.size();
  Status failed = Status::Ok();
  std::vector<std::shared_ptr<Instance>> fresh;
  for (size_t i = before; i < count && failed.ok(); ++i) {
    Slot slot;
    slot.gen = gen;
    slot.joining = true;
    if (mode_ == ListenMode::kReuseport) {
      // Connections the kernel hashes to this socket before its instance is
      // ready wait in its queue: slower, never refused.
      Result<UniqueFd> fd = BindListener(address_, host_, true);
      if (!fd.ok()) {
        failed = fd.status().WithContext("service " + name_ + ": reload");
        break;
      }
      slot.listen = std::move(*fd);
    }
    slots_.push_back(std::move(slot));
    Result<std::shared_ptr<Instance>> spawned = SpawnLocked(static_cast<int>(i), gen);
    if (!spawned.ok()) {
      failed = spawned.status().WithContext("reload");
      break;
    }
    slots_[i].incoming = *spawned;
    fresh.push_back(*spawned);
  }
  if (failed.ok()) {
    cv_.wait(lock, [&] {
      return stopping_ || std::all_of(fresh.begin(), fresh.end(), [](const auto& instance) {
               return instance->ready || instance->exited || instance->gave_up;
             });
    });
    if (stopping_) {
      DropLocked(fresh);
      return Cancelled("service " + name_ + " is shut down");
    }
    for (const std::shared_ptr<Instance>& instance : fresh) {
      if (instance->ready) continue;
      std::string tail = Tail(instance->err_tail);
      std::string why = instance->exited ? "exited: " + instance->exit_text +
                                               (tail.empty() ? "" : "; stderr: " + tail)
                                         : instance->check_error;
      failed = Unavailable("reload of service " + name_ + " stopped while adding instance " +
                           std::to_string(instance->slot) + ": its instance (pid " +
                           std::to_string(instance->pid) + ") " + why);
      break;
    }
  }
  if (failed.ok()) {
    for (size_t i = before; i < count; ++i) {
      Slot& slot = slots_[i];
      slot.current = std::move(slot.incoming);
      slot.joining = false;
    }
    if (mode_ == ListenMode::kRoundRobin) Wake();
    DropLocked(fresh);
    return Status::Ok();
  }
  DropLocked(fresh);
  // Undo: the added slots go, as in a shrink, and nothing else changed.
  for (size_t i = before; i < slots_.size(); ++i) {
    slots_[i].current = std::move(slots_[i].incoming);
    slots_[i].joining = false;
  }
  ShrinkLocked(lock, before, Duration::zero());
  return Status(failed.code(), failed.message() + "; nothing was replaced");
}

Status ServiceImpl::ReplaceLocked(std::unique_lock<std::mutex>& lock, size_t index,
                                  const std::shared_ptr<const Generation>& gen) {
  if (stopping_) return Cancelled("service " + name_ + " is shut down");
  Result<std::shared_ptr<Instance>> spawned = SpawnLocked(static_cast<int>(index), gen);
  if (!spawned.ok()) return spawned.status().WithContext("reload");
  std::shared_ptr<Instance> fresh = *spawned;
  slots_[index].incoming = fresh;
  // Bounded: the checker gives up after the ready timeout.
  cv_.wait(lock, [&] { return stopping_ || fresh->ready || fresh->exited || fresh->gave_up; });
  Slot& slot = slots_[index];  // the vector does not change size meanwhile
  slot.incoming.reset();
  if (!fresh->ready) {
    std::string tail = Tail(fresh->err_tail);
    std::string why = fresh->exited ? "exited: " + fresh->exit_text +
                                          (tail.empty() ? "" : "; stderr: " + tail)
                                    : fresh->check_error;
    if (!fresh->exited) {
      fresh->retiring = true;
      fresh->stop_check = true;
      fresh->kill_at = clock_.Now();
      Wake();
    }
    const pid_t pid = fresh->pid;
    std::vector<std::shared_ptr<Instance>> drop{std::move(fresh)};
    DropLocked(drop);
    if (stopping_) return Cancelled("service " + name_ + " is shut down");
    return Unavailable("reload of service " + name_ + " stopped at instance " +
                       std::to_string(index) + ": its replacement (pid " +
                       std::to_string(pid) + ") " + why + "; the old instance keeps serving");
  }
  std::shared_ptr<Instance> old = std::move(slot.current);
  slot.current = fresh;
  slot.gen = gen;
  slot.respawn_at.reset();
  slot.fast_exits = 0;
  RetireLocked(old, gen->spec.drain);
  if (mode_ == ListenMode::kRoundRobin) Wake();
  return Status::Ok();
}

void ServiceImpl::ShrinkLocked(std::unique_lock<std::mutex>& lock, size_t count, Duration drain) {
  if (count >= slots_.size()) return;
  const bool steer = mode_ == ListenMode::kReuseport;
  if (steer) {
    SteerLocked(count);
    WaitQueuesEmptyLocked(lock, count, std::chrono::steady_clock::now() + drain);
  }
  std::vector<std::shared_ptr<Instance>> leaving;
  for (size_t i = count; i < slots_.size(); ++i) {
    for (const std::shared_ptr<Instance>& instance : {slots_[i].current, slots_[i].incoming}) {
      if (!instance) continue;
      leaving.push_back(instance);
      RetireLocked(instance, drain);
    }
  }
  // Round-robin: the retired instances' channels are closed, so nothing is
  // routed to them. Reuseport: closes our copies of their sockets; each
  // leaves the kernel's group when its instance exits too.
  slots_.resize(count);
  rr_next_ %= count;
  WaitExitedLocked(lock, leaving);
  DropLocked(leaving);
  if (steer && !stopping_) SteerLocked(0);
}

void ServiceImpl::SteerLocked(size_t count) {
  if (slots_.empty() || !slots_[0].listen.valid()) return;
  const int fd = slots_[0].listen.get();  // any socket of the group will do
  if (count == 0) {
    int unused = 0;
    if (::setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused, sizeof(unused)) != 0 &&
        errno != ENOENT) {
      spdlog::warn("service {}: removing the reuseport program: {}", name_, std::strerror(errno));
    }
    return;
  }
  // A socket's index in the kernel's reuseport group is the order in which
  // it started listening, and sockets leave from the end: slot i is index i
  // (slots are added at the end and removed from the end). The program
  // returns a random index below `count`, so only those slots get new
  // connections.
  sock_filter code[] = {
      {BPF_LD | BPF_W | BPF_ABS, 0, 0, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_RANDOM)},
      {BPF_ALU | BPF_MOD | BPF_K, 0, 0, static_cast<uint32_t>(count)},
      {BPF_RET | BPF_A, 0, 0, 0},
  };
  sock_fprog program{static_cast<unsigned short>(std::size(code)), code};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof(program)) != 0) {
    spdlog::warn("service {}: cannot steer connections away from the instances being removed "
                 "({}); connections in their queues may be reset",
                 name_, std::strerror(errno));
  }
}

void ServiceImpl::WaitQueuesEmptyLocked(std::unique_lock<std::mutex>& lock, size_t from,
                                        std::chrono::steady_clock::time_point deadline) {
  const auto settled = std::chrono::steady_clock::now() + kSteerSettle;
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      spdlog::warn("service {}: connections still queued on the instances being removed after "
                   "their drain period; they will be reset",
                   name_);
      return;
    }
    bool empty = true;
    for (size_t i = from; i < slots_.size() && empty; ++i) {
      if (slots_[i].listen.valid() && ListenQueueLength(slots_[i].listen.get()) > 0) empty = false;
    }
    if (empty && now >= settled) return;
    // A bounded poll: the kernel tells nobody when a queue empties.
    cv_.wait_for(lock, kQueuePoll, [&] { return stopping_; });
  }
}

void ServiceImpl::WaitExitedLocked(std::unique_lock<std::mutex>& lock,
                                   const std::vector<std::shared_ptr<Instance>>& instances) {
  cv_.wait(lock, [&] {
    return stopping_ || std::all_of(instances.begin(), instances.end(),
                                    [](const auto& instance) { return instance->exited; });
  });
}

}  // namespace drover::services::internal
