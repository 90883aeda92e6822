#include "tools/cli/client.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "core/protocol/security.h"
#include "core/spec/job_spec.h"

namespace drover::cli {
namespace {

using protocol::Command;
using protocol::Message;
using SteadyClock = std::chrono::steady_clock;

}  // namespace

void AddConnectionOptions(CLI::App* command, ConnectionArgs* args) {
  command->add_option("--coordinator", args->coordinator,
                      "the coordinator's endpoint, e.g. tcp://HOST:7700")
      ->envname("DROVER_COORDINATOR");
  command->add_option("--curve-secret", args->curve_secret, "this client's CURVE secret key file")
      ->envname("DROVER_CURVE_SECRET");
  command->add_option("--curve-server-key", args->curve_server_key,
                      "the coordinator's CURVE public key file")
      ->envname("DROVER_CURVE_SERVER_KEY");
  command->add_option("--timeout", args->timeout, "how long to wait for the coordinator's answer")
      ->capture_default_str();
}

Result<ClientOptions> MakeClientOptions(const ConnectionArgs& args) {
  ClientOptions options;
  options.endpoint = args.coordinator;
  if (options.endpoint.empty()) {
    return InvalidArgument("no coordinator: give --coordinator tcp://HOST:PORT or set "
                           "DROVER_COORDINATOR");
  }
  auto timeout = spec::ParseDuration(args.timeout);
  if (!timeout || timeout->count() <= 0) {
    return InvalidArgument("--timeout: '" + args.timeout +
                           "' is not a duration (e.g. 500ms, 30s, 5m)");
  }
  options.timeout = *timeout;
  if (args.curve_secret.empty() != args.curve_server_key.empty()) {
    return InvalidArgument(
        "CURVE needs both --curve-secret FILE (this client's key) and --curve-server-key FILE "
        "(the coordinator's public key)");
  }
  if (!args.curve_secret.empty()) {
    auto secret = protocol::ReadSecretKeyFile(args.curve_secret);
    if (!secret.ok()) return secret.status();
    auto server = protocol::ReadPublicKeyFile(args.curve_server_key);
    if (!server.ok()) return server.status();
    options.configure_socket = [s = *secret, p = *server](zmq::socket_t& socket) {
      return protocol::ConfigureCurveClient(socket, s, p);
    };
  }
  return options;
}

Client::Client(zmq::context_t& context, ClientOptions options)
    : context_(context), options_(std::move(options)) {}

Client::~Client() = default;

Status Client::Connect() {
  monitor_.reset();
  socket_.reset();
  try {
    socket_.emplace(context_, zmq::socket_type::dealer);
    socket_->set(zmq::sockopt::linger, 0);
    socket_->set(zmq::sockopt::rcvhwm, 0);
    if (options_.configure_socket) {
      if (Status s = options_.configure_socket(*socket_); !s.ok()) return s;
      // Only a CURVE handshake can be refused; watch for that.
      const std::string address = "inproc://drover-client-monitor-" + std::to_string(++generation_);
      if (zmq_socket_monitor(socket_->handle(), address.c_str(),
                             ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
        monitor_.emplace(context_, zmq::socket_type::pair);
        monitor_->set(zmq::sockopt::linger, 0);
        monitor_->connect(address);
      }
    }
    socket_->connect(options_.endpoint);
  } catch (const zmq::error_t& e) {
    socket_.reset();
    monitor_.reset();
    return Unavailable("cannot connect to " + options_.endpoint + ": " + e.what());
  }
  last_heard_ = SteadyClock::now();
  return Status::Ok();
}

Status Client::Send(const Message& m) {
  if (!socket_) return FailedPrecondition("not connected");
  return protocol::Send(*socket_, m);
}

std::string Client::NoAnswerMessage() const {
  return "no answer from the coordinator at " + options_.endpoint + " within " +
         FormatDuration(options_.timeout) +
         " (is `drover coordinator` running there and reachable?" +
         (options_.configure_socket ? " is this client's public key in its authorized_keys?"
                                    : " does it require CURVE keys?") +
         ")";
}

Status Client::Poll(Duration wait, bool* readable) {
  *readable = false;
  zmq::pollitem_t items[2] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                              {monitor_ ? monitor_->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
  try {
    socket_wait_.Wait(
        std::span(items, monitor_ ? 2 : 1),
        std::chrono::ceil<std::chrono::milliseconds>(std::max(wait, Duration(0))));
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return Status::Ok();
    return Unavailable(std::string("poll: ") + e.what());
  }
  if (monitor_ && (items[1].revents & ZMQ_POLLIN)) {
    zmq::message_t event;
    if (monitor_->recv(event, zmq::recv_flags::dontwait)) {
      uint16_t id = 0;
      if (event.size() >= sizeof id) std::memcpy(&id, event.data(), sizeof id);
      // The second frame, the endpoint, is not needed.
      while (monitor_->get(zmq::sockopt::rcvmore)) {
        zmq::message_t rest;
        if (!monitor_->recv(rest, zmq::recv_flags::dontwait)) break;
      }
      if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        return FailedPrecondition("the coordinator at " + options_.endpoint +
                                  " refused this client's CURVE key (add its .pub to the "
                                  "coordinator's authorized_keys)");
      }
      return FailedPrecondition("the CURVE handshake with " + options_.endpoint +
                                " failed (is --curve-server-key the coordinator's public key, "
                                "and does the coordinator use CURVE?)");
    }
  }
  *readable = (items[0].revents & ZMQ_POLLIN) != 0;
  return Status::Ok();
}

Result<Message> Client::Call(const Message& request, std::initializer_list<Command> answers) {
  if (!socket_) {
    if (Status s = Connect(); !s.ok()) return s;
  }
  if (Status s = Send(request); !s.ok()) {
    return Unavailable("cannot send to " + options_.endpoint + ": " + s.message());
  }
  const auto deadline = SteadyClock::now() + options_.timeout;
  while (true) {
    const auto now = SteadyClock::now();
    if (now >= deadline) return DeadlineExceeded(NoAnswerMessage());
    bool readable = false;
    if (Status s = Poll(deadline - now, &readable); !s.ok()) return s;
    if (!readable) continue;
    for (int i = 0; i < 1024; ++i) {
      auto received = protocol::Receive(*socket_, /*router=*/false);
      if (!received) break;
      last_heard_ = SteadyClock::now();
      if (!received->ok()) {
        spdlog::warn("dropped a malformed message from {}: {}", options_.endpoint,
                     received->status().message());
        continue;
      }
      Message& m = received->value();
      if (m.command == Command::kError) {
        auto e = protocol::Parse<wire::Error>(m);
        return FailedPrecondition(e.ok() ? e->message() : "the coordinator refused the request");
      }
      if (std::find(answers.begin(), answers.end(), m.command) != answers.end()) {
        return std::move(m);
      }
    }
  }
}

Result<Client::Event> Client::Next(Duration max_wait, Message* out) {
  if (!socket_) return FailedPrecondition("not connected");
  const auto deadline = SteadyClock::now() + max_wait;
  const Duration silence_limit = options_.heartbeat * options_.liveness;
  while (true) {
    while (auto received = protocol::Receive(*socket_, /*router=*/false)) {
      last_heard_ = SteadyClock::now();
      if (!received->ok()) continue;
      Message& m = received->value();
      if (m.command == Command::kHeartbeat) continue;
      if (m.command == Command::kDisconnect) return Event::kLost;
      *out = std::move(m);
      return Event::kMessage;
    }
    const auto now = SteadyClock::now();
    if (now - last_heard_ >= silence_limit) return Event::kLost;
    if (now >= deadline) return Event::kIdle;
    bool readable = false;
    const auto wake = std::min(deadline, last_heard_ + silence_limit);
    if (Status s = Poll(wake - now, &readable); !s.ok()) return s;
  }
}

Duration Client::Silence() const { return SteadyClock::now() - last_heard_; }

}  // namespace drover::cli
