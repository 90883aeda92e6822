// Ready probes: is this one instance serving?
//
// A probe is a connection that provably reached the instance's process, and
// for an HTTP check a GET answered 2xx on that same connection.
//   - Inherited sockets (reuseport, shared): the probe connects to the
//     port; the kernel picks the socket and the process that accepts it.
//     sock_diag shows the server side's inode once a process accepted
//     it (0 while it waits in a listen queue), and /proc/PID/fd tells
//     whether that process is the instance under test. A probe accepted by
//     another instance is retried with a new one.
//   - Round-robin: the supervisor makes a private loopback connection and
//     passes its server side over the instance's hand-off channel; the
//     instance has it once it appears in /proc/PID/fd.
// Probes block; the supervisor runs them on a checker thread. Every wait
// is bounded by `deadline` and cut short when `stop` is set.
#ifndef DROVER_BACKENDS_SERVICES_PROBE_H_
#define DROVER_BACKENDS_SERVICES_PROBE_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "backends/services/listen_socket.h"
#include "backends/services/service.h"
#include "core/base/status.h"

namespace drover::services {

struct ProbeTarget {
  pid_t pid = 0;
  std::string host;  // for messages and the Host header
  int port = 0;
  SocketAddress address;  // where inherited-socket probes connect
  int handoff_fd = -1;    // round-robin: the supervisor's end of the channel
  // Shared mode: any instance accepting proves the socket is served (the
  // kernel would not route a probe to one instance in particular).
  bool any_instance = false;
  // The pids of the service's other running instances, asked for after
  // each accepted probe. With an inherited socket the kernel may hand a
  // probe to any of them (another socket of the reuseport group, or the
  // predecessor that shares this slot's socket during a reload); seeing
  // one of them hold the probe's connection ends that probe at once, with
  // no verdict. Empty: no other instance is known.
  std::function<std::vector<pid_t>()> others;
};

// One probe. Ok: the instance is ready. kUnavailable: not yet, with the
// reason ("connect to 127.0.0.1:8080: Connection refused", "GET /health
// answered 503", "a connection waits in the listen queue; no instance
// accepted it"). kFailedPrecondition: another instance of the service (one
// of `others`) accepted the probe, which says nothing of this one: probe
// again at once. kCancelled when `stop` was set.
Status ProbeOnce(const ProbeTarget& target, const ReadyCheck& check,
                 std::chrono::steady_clock::time_point deadline, const std::atomic<bool>& stop);

// The status code of an HTTP/1.x response whose head is in `text`, or 0.
int ParseHttpStatus(const std::string& text);

}  // namespace drover::services

#endif  // DROVER_BACKENDS_SERVICES_PROBE_H_
