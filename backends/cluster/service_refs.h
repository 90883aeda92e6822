// `${services.NAME.port}` and `${services.NAME.host}` in a task attempt:
// the spec loader checks them and leaves them as text (core/spec); the
// worker replaces them here once the services are up, because a port of 0
// is only known on the worker that bound it.
#ifndef DROVER_BACKENDS_CLUSTER_SERVICE_REFS_H_
#define DROVER_BACKENDS_CLUSTER_SERVICE_REFS_H_

#include <map>
#include <string>
#include <string_view>

#include "backends/backend.h"

namespace drover::cluster {

// Where a task reaches a service: a connectable host (a wildcard listen
// address 0.0.0.0 / :: becomes 127.0.0.1 / ::1) and the bound port.
struct ServiceAddress {
  std::string host;
  int port = 0;
};

// The host a client on this machine connects to for a service listening
// on `listen_host`.
std::string ConnectableHost(std::string_view listen_host);

// `text` with every `${services.NAME.port}` / `${services.NAME.host}` whose
// NAME is in `addresses` replaced. Other text, and references to services
// not in `addresses`, are left as they are.
std::string ReplaceServiceRefs(std::string_view text,
                               const std::map<std::string, ServiceAddress>& addresses);

// Applies ReplaceServiceRefs to every field of `attempt` a reference may be
// in: argv, env values, cwd, args_json, message_json, and the request's
// path, header values and body.
void ReplaceServiceRefs(const std::map<std::string, ServiceAddress>& addresses,
                        TaskAttempt* attempt);

}  // namespace drover::cluster

#endif  // DROVER_BACKENDS_CLUSTER_SERVICE_REFS_H_
