// `drover keygen NAME`: a CurveZMQ key pair for a coordinator, a worker or a
// client (docs/operations.md, "Security").
#include <cstdio>

#include "core/protocol/security.h"
#include "tools/cli/commands.h"

namespace drover::cli {

int KeygenCommand(const std::string& name) {
  if (name.empty() || name.back() == '/') {
    std::fprintf(stderr, "drover keygen: give a NAME (NAME.key and NAME.pub are written)\n");
    return kExitUsage;
  }
  auto keys = protocol::GenerateCurveKeyPair();
  if (!keys.ok()) {
    std::fprintf(stderr, "drover keygen: %s\n", keys.status().message().c_str());
    return kExitFailed;
  }
  if (Status s = protocol::WriteKeyPair(name, *keys); !s.ok()) {
    std::fprintf(stderr, "drover keygen: %s\n", s.message().c_str());
    return kExitFailed;
  }
  std::printf("%s.key: secret key (mode 0600; keep it on this host)\n", name.c_str());
  std::printf("%s.pub: public key %s\n", name.c_str(), keys->public_key.c_str());
  return kExitOk;
}

}  // namespace drover::cli
