// Fuzz target: the decoders of the drover protocol (core/protocol/codec.h),
// what the coordinator, a worker and a client run on every message a peer
// sends.
//
// The first byte picks the mode:
// - bit 7 clear: body mode. The byte picks one of the 36 commands (modulo
//   36), the rest of the input is its body frame, decoded with Parse<T> of
//   that command's drover.proto message (and OutcomeFromWire for RESULT).
// - bit 7 set: frames mode. The rest is a list of frames, each a 2-byte
//   little-endian length and that many bytes (the last one takes what is
//   left), sent as one multipart message over inproc:// to
//   protocol::Receive (as a ROUTER's when bit 6 is set), with small limits
//   so that they are reached; a message it accepts is decoded as above.
//
// Besides not crashing, it checks that a decoded body serializes again to
// bytes that decode, that Receive consumes every frame it is given, and
// that an accepted message has a known command and stays in its limits.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <google/protobuf/stubs/logging.h>
#include <zmq.hpp>

#include "core/protocol/codec.h"
#include "core/protocol/convert.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace protocol = drover::protocol;
namespace wire = drover::wire;
using protocol::Command;

constexpr std::array<Command, 36> kCommands = {
    Command::kHello,         Command::kWelcome,        Command::kDispatch,
    Command::kResult,        Command::kAck,            Command::kCancel,
    Command::kHeartbeat,     Command::kDisconnect,     Command::kSubmit,
    Command::kSubmitted,     Command::kTaskEvent,      Command::kJobEvent,
    Command::kCancelJob,     Command::kWatch,          Command::kStatusRequest,
    Command::kStatusReply,   Command::kWorkersRequest, Command::kWorkersReply,
    Command::kRetryJob,      Command::kLogsRequest,    Command::kLogs,
    Command::kOk,            Command::kError,          Command::kDraining,
    Command::kOutput,        Command::kJobDone,        Command::kServiceReloaded,
    Command::kServiceReload, Command::kArtifactPut,    Command::kArtifactGet,
    Command::kArtifactChunk, Command::kArtifactCredit, Command::kArtifactDone,
    Command::kPipelinesRequest, Command::kPipelinesReply, Command::kPipelineRun,
};

template <typename Proto>
void Decode(const protocol::Message& m) {
  drover::Result<Proto> body = protocol::Parse<Proto>(m);
  if (!body.ok()) {
    FUZZ_CHECK(!body.status().message().empty());
    return;
  }
  // What decoded encodes again, to bytes that decode.
  std::string again;
  FUZZ_CHECK(body->SerializeToString(&again));
  FUZZ_CHECK(again.size() == body->ByteSizeLong());
  protocol::Message copy = m;
  copy.body = again;
  FUZZ_CHECK(protocol::Parse<Proto>(copy).ok());
  if constexpr (std::is_same_v<Proto, wire::Result>) {
    (void)protocol::OutcomeFromWire(*body);
  }
}

// Parse<T> with the message type of m.command, as the receivers do.
void DecodeBody(const protocol::Message& m) {
  switch (m.command) {
    case Command::kHello: return Decode<wire::Hello>(m);
    case Command::kWelcome: return Decode<wire::Welcome>(m);
    case Command::kDispatch: return Decode<wire::Dispatch>(m);
    case Command::kResult: return Decode<wire::Result>(m);
    case Command::kAck: return Decode<wire::Ack>(m);
    case Command::kCancel: return Decode<wire::Cancel>(m);
    case Command::kHeartbeat: return Decode<wire::Heartbeat>(m);
    case Command::kDisconnect: return Decode<wire::Disconnect>(m);
    case Command::kSubmit: return Decode<wire::Submit>(m);
    case Command::kSubmitted: return Decode<wire::Submitted>(m);
    case Command::kTaskEvent: return Decode<wire::TaskEvent>(m);
    case Command::kJobEvent: return Decode<wire::JobEvent>(m);
    case Command::kCancelJob: return Decode<wire::CancelJob>(m);
    case Command::kWatch: return Decode<wire::Watch>(m);
    case Command::kStatusRequest: return Decode<wire::StatusRequest>(m);
    case Command::kStatusReply: return Decode<wire::StatusReply>(m);
    case Command::kWorkersRequest: return Decode<wire::WorkersRequest>(m);
    case Command::kWorkersReply: return Decode<wire::WorkersReply>(m);
    case Command::kRetryJob: return Decode<wire::RetryJob>(m);
    case Command::kLogsRequest: return Decode<wire::LogsRequest>(m);
    case Command::kLogs: return Decode<wire::Logs>(m);
    case Command::kOk: return Decode<wire::Ok>(m);
    case Command::kError: return Decode<wire::Error>(m);
    case Command::kDraining: return Decode<wire::Draining>(m);
    case Command::kOutput: return Decode<wire::Output>(m);
    case Command::kJobDone: return Decode<wire::JobDone>(m);
    case Command::kServiceReloaded: return Decode<wire::ServiceReloaded>(m);
    case Command::kServiceReload: return Decode<wire::ServiceReload>(m);
    case Command::kArtifactPut: return Decode<wire::ArtifactPut>(m);
    case Command::kArtifactGet: return Decode<wire::ArtifactGet>(m);
    case Command::kArtifactChunk: return Decode<wire::ArtifactChunk>(m);
    case Command::kArtifactCredit: return Decode<wire::ArtifactCredit>(m);
    case Command::kArtifactDone: return Decode<wire::ArtifactDone>(m);
    case Command::kPipelinesRequest: return Decode<wire::PipelinesRequest>(m);
    case Command::kPipelinesReply: return Decode<wire::PipelinesReply>(m);
    case Command::kPipelineRun: return Decode<wire::PipelineRun>(m);
  }
  FUZZ_CHECK(false && "Receive returned an unknown command");
}

// An inproc PAIR: frames go in at `in`, Receive reads them at `out`. Made
// once; each input leaves both empty.
struct Wire {
  zmq::context_t context{1};
  zmq::socket_t out{context, zmq::socket_type::pair};
  zmq::socket_t in{context, zmq::socket_type::pair};
  Wire() {
    out.bind("inproc://fuzz");
    in.connect("inproc://fuzz");
  }
};

void DecodeFrames(std::string_view rest, bool router) {
  static Wire* const wire_ = new Wire();  // lives for the process
  std::vector<std::string_view> frames;
  while (!rest.empty()) {
    size_t length = static_cast<uint8_t>(rest[0]);
    if (rest.size() > 1) length |= static_cast<size_t>(static_cast<uint8_t>(rest[1])) << 8;
    rest.remove_prefix(std::min<size_t>(2, rest.size()));
    length = std::min(length, rest.size());
    frames.push_back(rest.substr(0, length));
    rest.remove_prefix(length);
  }
  if (frames.empty()) return;
  size_t total = 0;  // without the routing id, which a real ROUTER makes
  for (size_t i = 0; i < frames.size(); ++i) {
    if (i > 0 || !router) total += frames[i].size();
    const auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
    FUZZ_CHECK(wire_->in.send(zmq::buffer(frames[i].data(), frames[i].size()), flags));
  }
  zmq::pollitem_t item{wire_->out.handle(), 0, ZMQ_POLLIN, 0};
  FUZZ_CHECK(zmq::poll(&item, 1, std::chrono::milliseconds(1000)) == 1);

  protocol::Limits limits;
  limits.max_body = 1024;
  limits.max_payload_frames = 2;
  limits.max_message = 4096;
  std::optional<std::string> wrong_version;
  auto received = protocol::Receive(wire_->out, router, limits, &wrong_version);
  FUZZ_CHECK(received.has_value());
  // Every frame was consumed, accepted or not.
  FUZZ_CHECK(!protocol::Receive(wire_->out, router, limits).has_value());
  if (!received->ok()) {
    FUZZ_CHECK(!received->status().message().empty());
    return;
  }
  const protocol::Message& m = **received;
  FUZZ_CHECK(!wrong_version.has_value());
  FUZZ_CHECK(m.body.size() <= limits.max_body);
  FUZZ_CHECK(m.payloads.size() <= limits.max_payload_frames);
  FUZZ_CHECK(total <= limits.max_message);
  FUZZ_CHECK(protocol::CommandName(m.command) != "UNKNOWN");
  DecodeBody(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Protobuf logs each string field that is not UTF-8; the fuzzer makes many.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 0x80) == 0) {
    protocol::Message m;
    m.command = kCommands[data[0] % kCommands.size()];
    m.body.assign(rest);
    DecodeBody(m);
  } else {
    DecodeFrames(rest, (data[0] & 0x40) != 0);
  }
  return 0;
}
