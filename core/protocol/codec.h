// The frame codec of the drover protocol (docs/protocol.md). Thin over
// cppzmq: it builds and checks the header and command frames and carries the
// body and payload frames. Bodies are drover.proto messages.
//
// Decoding never throws and never aborts: a malformed message is an error
// value that the caller counts and drops.
#ifndef DROVER_CORE_PROTOCOL_CODEC_H_
#define DROVER_CORE_PROTOCOL_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "core/base/status.h"
#include "core/protocol/drover.pb.h"

namespace drover::protocol {

inline constexpr uint8_t kVersion = 2;
inline constexpr std::string_view kHeaderPrefix = "DROVER";

enum class Command : uint8_t {
  kHello = 0x01,
  kWelcome = 0x02,
  kDispatch = 0x03,
  kResult = 0x04,
  kAck = 0x05,
  kCancel = 0x06,
  kHeartbeat = 0x07,
  kDisconnect = 0x08,
  kSubmit = 0x10,
  kSubmitted = 0x11,
  kTaskEvent = 0x12,
  kJobEvent = 0x13,
  kCancelJob = 0x14,
  kWatch = 0x15,
  kStatusRequest = 0x16,
  kStatusReply = 0x17,
  kWorkersRequest = 0x18,
  kWorkersReply = 0x19,
  kRetryJob = 0x1A,
  kLogsRequest = 0x1B,
  kLogs = 0x1C,
  kOk = 0x1E,
  kError = 0x1F,
  kDraining = 0x09,
  kOutput = 0x0A,
  kJobDone = 0x0B,
  kServiceReloaded = 0x0C,
  kServiceReload = 0x1D,
};

std::string_view CommandName(Command c);  // "HELLO", "DISPATCH", ...

// Limits a receiver applies before parsing.
struct Limits {
  size_t max_body = 4u << 20;        // bytes in the body frame
  size_t max_payload_frames = 4;
  size_t max_message = 64u << 20;    // bytes in all frames together
};

// A decoded message. `routing_id` is the ROUTER identity frame, empty on a
// DEALER.
struct Message {
  std::string routing_id;
  Command command = Command::kHeartbeat;
  std::string body;                  // serialized protobuf
  std::vector<std::string> payloads;
  // The sender's transport address ("127.0.0.1" for tcp), read from the
  // connection's ZeroMQ metadata on receive, for HELLO only (it is shown by
  // `drover workers`). Empty for inproc and for other commands.
  std::string peer_address;
};

// Serializes `body` into a Message.
template <typename Proto>
Message Make(Command command, const Proto& body) {
  Message m;
  m.command = command;
  body.SerializeToString(&m.body);
  return m;
}

// Parses m.body as `Proto`; kInvalidArgument when it does not parse.
template <typename Proto>
Result<Proto> Parse(const Message& m) {
  Proto p;
  if (!p.ParseFromString(m.body)) {
    return InvalidArgument(std::string("malformed ") +
                           std::string(CommandName(m.command)) + " body");
  }
  return p;
}

// Sends `m` on `socket`, prefixed by m.routing_id when it is not empty (a
// ROUTER). Returns kUnavailable when the socket would block (the peer's
// queue is full or it is gone from a ROUTER) or the context is closing.
Status Send(zmq::socket_t& socket, const Message& m);

// Receives one whole multipart message without blocking. Returns nullopt
// when nothing is queued. `router` says whether the first frame is a routing
// id. A malformed message (bad header, unknown version or command, limits
// exceeded) is consumed and returned as an error naming the reason.
//
// When `wrong_version` is given and a message is refused because its header
// carries another protocol version, *wrong_version receives the sender's
// routing id (ROUTER) so that the caller can answer with an ERROR, as
// docs/protocol.md ("Versioning") asks; it is cleared otherwise.
std::optional<Result<Message>> Receive(zmq::socket_t& socket, bool router,
                                       const Limits& limits = {},
                                       std::optional<std::string>* wrong_version = nullptr);

}  // namespace drover::protocol

#endif  // DROVER_CORE_PROTOCOL_CODEC_H_
