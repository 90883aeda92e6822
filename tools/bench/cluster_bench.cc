// tools/bench/cluster_bench: runs one cluster service outside any job, for
// `tools/bench/bench cluster` (and by hand): the same Service the worker's
// cluster backend starts for a job, on a loopback port.
//
//   cluster_bench [--mode reuseport|shared|round-robin] [--instances N]
//                 [--port P] -- COMMAND [ARGS...]
//
// Prints "ready PORT" once every instance is ready, serves until its stdin
// reaches end of file, then prints one "instance SLOT pid=PID restarts=R
// connections=C" line per instance (connections: round-robin only) and
// stops the service (SIGTERM, 2 s, SIGKILL).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backends/services/service.h"

int main(int argc, char** argv) {
  using drover::services::ServiceSpec;
  ServiceSpec spec;
  spec.name = "bench";
  spec.instances = 2;
  spec.ready.timeout = std::chrono::seconds(20);
  std::string mode = "reuseport";
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "cluster_bench: %s needs a value\n", arg.c_str());
      return 2;
    }
    if (arg == "--mode") {
      mode = argv[++i];
    } else if (arg == "--instances") {
      spec.instances = std::atoi(argv[++i]);
    } else if (arg == "--port") {
      spec.port = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "cluster_bench: unknown option %s\n", arg.c_str());
      return 2;
    }
  }
  for (; i < argc; ++i) spec.command.emplace_back(argv[i]);
  if (spec.command.empty()) {
    std::fprintf(stderr, "usage: cluster_bench [--mode M] [--instances N] [--port P] -- CMD...\n");
    return 2;
  }
  auto parsed = drover::services::ParseListenMode(mode);
  if (!parsed.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", parsed.status().message().c_str());
    return 2;
  }
  spec.mode = *parsed;

  drover::RealClock clock;
  auto service = drover::services::Service::Start(spec, clock);
  if (!service.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", service.status().message().c_str());
    return 1;
  }
  if (drover::Status ready = (*service)->WaitReady(std::chrono::seconds(30)); !ready.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", ready.message().c_str());
    (*service)->Shutdown(std::chrono::seconds(1));
    return 1;
  }
  std::printf("ready %d\n", (*service)->port());
  std::fflush(stdout);
  while (std::getchar() != EOF) {
  }
  for (const auto& inst : (*service)->Instances()) {
    std::printf("instance %d pid=%d restarts=%llu connections=%llu\n", inst.slot,
                static_cast<int>(inst.pid), static_cast<unsigned long long>(inst.restarts),
                static_cast<unsigned long long>(inst.connections));
  }
  std::fflush(stdout);
  (*service)->Shutdown(std::chrono::seconds(2));
  return 0;
}
