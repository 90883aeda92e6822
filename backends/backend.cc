#include "backends/backend.h"

#include "backends/cluster/cluster_backend.h"
#include "backends/fork/fork_backend.h"
#include "backends/spawn/spawn_backend.h"
#include "backends/threads/threads_backend.h"

namespace drover {

Status BackendRegistry::Register(std::string name, BackendFactory factory) {
  if (factories_.count(name)) {
    return AlreadyExists("backend '" + name + "' is registered twice");
  }
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

void RegisterBuiltinBackends(BackendRegistry& registry) {
  (void)registry.Register("spawn", [](const BackendConfig& config)
                              -> Result<std::unique_ptr<Backend>> {
    return std::unique_ptr<Backend>(std::make_unique<SpawnBackend>(config));
  });
  (void)registry.Register("fork", [](const BackendConfig& config)
                              -> Result<std::unique_ptr<Backend>> {
    return std::unique_ptr<Backend>(std::make_unique<ForkBackend>(config));
  });
  (void)registry.Register("cluster", [](const BackendConfig& config)
                              -> Result<std::unique_ptr<Backend>> {
    return std::unique_ptr<Backend>(std::make_unique<ClusterBackend>(config));
  });
  (void)registry.Register("threads", [](const BackendConfig& config)
                              -> Result<std::unique_ptr<Backend>> {
    auto backend = ThreadsBackend::Create(config);
    if (!backend.ok()) return backend.status();
    return std::unique_ptr<Backend>(std::move(backend).value());
  });
}

}  // namespace drover
