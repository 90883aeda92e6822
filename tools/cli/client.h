// Client: the one connection every client command (`drover submit`,
// `status`, `logs`, `cancel`, `retry`, `workers`) has to a coordinator.
//
// A DEALER socket, owned by the thread that uses the Client (not
// thread-safe). Call() is one request and its answer, bounded by the
// request timeout: a coordinator that does not answer is an error naming
// its address and the wait, never a hang. While a command watches a job,
// Next() hands it the coordinator's messages and tells it when the
// coordinator has been silent for `liveness` heartbeats (it heartbeats
// watching clients) or said DISCONNECT; the command then calls Reconnect()
// and sends its WATCH again, so a wait survives a coordinator that is
// killed and restarted. With CURVE, a handshake the coordinator refuses is
// reported as such (a socket monitor sees it) instead of as a timeout.
#ifndef DROVER_TOOLS_CLI_CLIENT_H_
#define DROVER_TOOLS_CLI_CLIENT_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "core/base/clock.h"
#include "core/base/status.h"
#include "core/protocol/codec.h"
#include "core/protocol/socket_wait.h"

namespace drover::cli {

// The TASK-EVENTs one message may carry, as drover's clients ask them
// (Submit/Watch.max_batch; docs/protocol.md, TASK-EVENT): a 100,000-task
// `drover run` printing every task took one message a task.
inline constexpr uint32_t kEventBatch = 256;

// The connection flags of every client command.
struct ConnectionArgs {
  std::string coordinator;       // --coordinator or DROVER_COORDINATOR
  std::string curve_secret;      // --curve-secret FILE or DROVER_CURVE_SECRET
  std::string curve_server_key;  // --curve-server-key FILE or DROVER_CURVE_SERVER_KEY
  std::string timeout = "10s";   // --timeout: how long to wait for an answer
};
// Adds --coordinator, --curve-secret, --curve-server-key and --timeout.
void AddConnectionOptions(CLI::App* command, ConnectionArgs* args);

struct ClientOptions {
  std::string endpoint;
  Duration timeout = std::chrono::seconds(10);  // per request
  // The coordinator heartbeats watching clients every interval; silence
  // for `liveness` intervals means it is gone.
  Duration heartbeat = std::chrono::seconds(1);
  int liveness = 5;
  // Sets CURVE client keys on each new socket; empty: no CURVE.
  std::function<Status(zmq::socket_t&)> configure_socket;
};

// ClientOptions from the flags: reads the key files. Usage errors name the
// flag or the file.
Result<ClientOptions> MakeClientOptions(const ConnectionArgs& args);

class Client {
 public:
  Client(zmq::context_t& context, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Opens a fresh connection (dropping the old one and what it queued).
  Status Connect();
  // Sends one message. kUnavailable when it cannot be queued.
  Status Send(const protocol::Message& m);
  // Sends `request` and waits up to the request timeout for a message whose
  // command is one of `answers`, or ERROR (returned as kFailedPrecondition
  // with the coordinator's message). Other messages are skipped.
  Result<protocol::Message> Call(const protocol::Message& request,
                                 std::initializer_list<protocol::Command> answers);

  enum class Event { kMessage, kIdle, kLost };
  // Waits up to `max_wait` for a message other than HEARTBEAT. kMessage sets
  // *out; kIdle: nothing yet; kLost: the coordinator has been silent for
  // `liveness` heartbeats, or said DISCONNECT (then Reconnect and re-WATCH).
  // An authentication failure is an error Status.
  Result<Event> Next(Duration max_wait, protocol::Message* out);
  // Time since the coordinator was last heard from (or since Connect).
  Duration Silence() const;

  const std::string& endpoint() const { return options_.endpoint; }
  // "no answer from the coordinator at E within 10s (...)".
  std::string NoAnswerMessage() const;

 private:
  // Polls the socket and the monitor. Returns an error on a refused
  // handshake.
  Status Poll(Duration wait, bool* readable);

  zmq::context_t& context_;
  ClientOptions options_;
  std::optional<zmq::socket_t> socket_;
  std::optional<zmq::socket_t> monitor_;  // handshake failures (CURVE only)
  protocol::SocketWait socket_wait_;      // Poll's wait on both
  int generation_ = 0;                    // names each monitor endpoint
  std::chrono::steady_clock::time_point last_heard_;
};

}  // namespace drover::cli

#endif  // DROVER_TOOLS_CLI_CLIENT_H_
