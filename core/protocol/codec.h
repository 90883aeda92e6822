// The frame codec of the drover protocol (docs/protocol.md). Thin over
// cppzmq: it builds and checks the header and command frames and carries the
// body and payload frames. Bodies are drover.proto messages.
//
// Decoding never throws and never aborts: a malformed message is an error
// value that the caller counts and drops.
#ifndef DROVER_CORE_PROTOCOL_CODEC_H_
#define DROVER_CORE_PROTOCOL_CODEC_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "core/base/status.h"
#include "core/protocol/drover.pb.h"
#include "core/protocol/roles.h"

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
  kArtifactPut = 0x20,
  kArtifactGet = 0x21,
  kArtifactChunk = 0x22,
  kArtifactCredit = 0x23,
  kArtifactDone = 0x24,
  kPipelinesRequest = 0x25,
  kPipelinesReply = 0x26,
  kPipelineRun = 0x27,
};

std::string_view CommandName(Command c);  // "HELLO", "DISPATCH", ...

// Limits a receiver applies before parsing.
struct Limits {
  size_t max_body = 4u << 20;        // bytes in the body frame
  size_t max_payload_frames = 4;
  size_t max_message = 64u << 20;    // bytes in all frames together
};

// The key a message came with, as the coordinator's ZAP handler vouched for
// it (docs/security.md, "Keys and roles"): read from the connection's
// metadata on receive. Without ZAP (inproc://, tcp:// with --insecure)
// there is no key and the role is admin. With a key but no known role in
// the metadata the role is kNone, which may send nothing.
struct PeerKey {
  std::string key;   // the CURVE public key (Z85; ZAP's User-Id), "" for none
  std::string name;  // the key's name in authorized_keys, "" for none
  Role role = Role::kAdmin;
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
  PeerKey peer;
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

// Appends one entry to `batch`, the encoded RESULT body of the batch's
// head (docs/protocol.md, "Batches"): `entry` is an encoded Result with no
// `more`, and `out` and `err` its output, which in an entry travels in
// `stdout_data` and `stderr_data`. The protobuf encoding of a message is
// its fields one after the other, a repeated message field one element at
// a time, so appending gives the bytes SerializeToString gives for the
// head with the entry added to `more`, without parsing either again.
void AppendResultEntry(std::string* batch, std::string_view entry, std::string_view out,
                       std::string_view err);

// Appends one entry to `batch`, the encoded TASK-EVENT body of the batch's
// head (docs/protocol.md, TASK-EVENT): `entry` is an encoded TaskEvent with
// no `more`. As AppendResultEntry, the bytes are those SerializeToString
// gives for the head with the entry added to `more`.
void AppendTaskEventEntry(std::string* batch, std::string_view entry);

// Appends `ids` to `dispatch`, the encoded body of a DISPATCH, as its
// `acks` (docs/protocol.md, ACK): one packed field, the bytes
// SerializeToString gives for the message with those acks added.
void AppendDispatchAcks(std::string* dispatch, const std::vector<uint64_t>& ids);

// Appends `ids` to `result`, the encoded body of a RESULT's head, as its
// `started` (docs/protocol.md, RESULT), the same way.
void AppendResultStarts(std::string* result, const std::vector<uint64_t>& ids);

// Sends `m` on `socket`, prefixed by m.routing_id when it is not empty (a
// ROUTER). Returns kUnavailable when the socket would block (the peer's
// queue is full or it is gone from a ROUTER) or the context is closing.
Status Send(zmq::socket_t& socket, const Message& m);

// Bytes a message is counted for by SendCounted: its body and payload
// frames, plus a fixed allowance for ZeroMQ's own structures and the small
// frames (routing id, header, command), so that a flood of empty messages
// is counted too.
inline constexpr size_t kMessageOverhead = 256;
size_t CountedBytes(const Message& m);

// Like Send, but moves m.body and m.payloads into ZeroMQ without copying
// and keeps `*queued` equal to the bytes (CountedBytes) of the messages
// ZeroMQ still holds: it adds them here and ZeroMQ subtracts each frame's
// share when it frees the frame (written to the connection, read by an
// inproc peer, or dropped with a connection that closed), from one of its
// I/O threads. A message that is not sent is released at once. `m`'s body
// and payloads are empty afterwards.
Status SendCounted(zmq::socket_t& socket, Message&& m,
                   const std::shared_ptr<std::atomic<int64_t>>& queued);

// Receives one whole multipart message without blocking. Returns nullopt
// when nothing is queued. `router` says whether the first frame is a routing
// id. A malformed message (bad header, unknown version or command, limits
// exceeded) is consumed and returned as an error naming the reason.
//
// When `wrong_version` is given and a message is refused because its header
// carries another protocol version, *wrong_version receives the sender's
// routing id (ROUTER) so that the caller can answer with an ERROR, as
// docs/protocol.md ("Versioning") asks; it is cleared otherwise.
//
// When `from` is given on a ROUTER, *from receives the sender's routing id
// of every message received, a malformed one included (so that the caller
// can count and log rejections per peer).
std::optional<Result<Message>> Receive(zmq::socket_t& socket, bool router,
                                       const Limits& limits = {},
                                       std::optional<std::string>* wrong_version = nullptr,
                                       std::string* from = nullptr);

}  // namespace drover::protocol

#endif  // DROVER_CORE_PROTOCOL_CODEC_H_
