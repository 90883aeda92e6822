#include "backends/backend.h"

#include "backends/cluster/cluster_backend.h"
#include "backends/cluster/cluster_kind.h"
#include "backends/fork/fork_backend.h"
#include "backends/fork/fork_kind.h"
#include "backends/spawn/spawn_backend.h"
#include "backends/spawn/spawn_kind.h"
#include "backends/threads/threads_backend.h"
#include "backends/threads/threads_kind.h"

namespace drover {

Status BackendRegistry::Register(std::string name, std::unique_ptr<spec::TaskKind> kind,
                                 BackendFactory factory) {
  if (kind == nullptr || !factory) {
    return InvalidArgument("backend '" + name + "' is registered without its kind or factory");
  }
  if (factories_.count(name) || kinds_.Find(name) != nullptr) {
    return AlreadyExists("backend '" + name + "' is registered twice");
  }
  kinds_.Add(name, std::move(kind));
  factories_.emplace(std::move(name), std::move(factory));
  return Status::Ok();
}

Result<std::unique_ptr<Backend>> BackendRegistry::Create(
    const std::string& name, const BackendConfig& config) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    return NotFound("no backend named '" + name + "' in this worker");
  }
  return it->second(config);
}

bool BackendRegistry::Has(const std::string& name) const {
  return factories_.count(name) != 0;
}

std::vector<std::string> BackendRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : factories_) names.push_back(name);
  return names;
}

// The order is the one "the backends are ..." messages list them in.
void RegisterBuiltinBackends(BackendRegistry& registry) {
  (void)registry.Register("spawn", spawn::MakeSpawnTaskKind(),
                          [](const BackendConfig& config) -> Result<std::unique_ptr<Backend>> {
                            return std::unique_ptr<Backend>(std::make_unique<SpawnBackend>(config));
                          });
  (void)registry.Register("fork", fork::MakeForkTaskKind(),
                          [](const BackendConfig& config) -> Result<std::unique_ptr<Backend>> {
                            return std::unique_ptr<Backend>(std::make_unique<ForkBackend>(config));
                          });
  (void)registry.Register("threads", threads::MakeThreadsTaskKind(),
                          [](const BackendConfig& config) -> Result<std::unique_ptr<Backend>> {
                            auto backend = ThreadsBackend::Create(config);
                            if (!backend.ok()) return backend.status();
                            return std::unique_ptr<Backend>(std::move(backend).value());
                          });
  (void)registry.Register("cluster", cluster::MakeClusterTaskKind(),
                          [](const BackendConfig& config) -> Result<std::unique_ptr<Backend>> {
                            return std::unique_ptr<Backend>(std::make_unique<ClusterBackend>(config));
                          });
}

}  // namespace drover
