#include "core/protocol/codec.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <array>
#include <utility>

// ThreadSanitizer cannot see the happens-before that libzmq (Debian's
// build, not instrumented) gives a message between the thread that sends
// it and the one that receives it. A frame SendCounted hands over is not
// copied on inproc://: the receiver reads the sender's own buffer, and
// frees it with its CountedFrame. So the handover is told to TSan: a
// release on both addresses once the sender is done with them, an acquire
// on the received bytes before they are read and on both before they are
// freed. No-ops in other builds.
#if defined(__SANITIZE_THREAD__)
#define DROVER_CODEC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DROVER_CODEC_TSAN 1
#endif
#endif
#ifdef DROVER_CODEC_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace drover::protocol {
namespace {

void HandOver(const void* data) {
#ifdef DROVER_CODEC_TSAN
  __tsan_release(const_cast<void*>(data));
#else
  (void)data;
#endif
}

void TakeOver(const void* data) {
#ifdef DROVER_CODEC_TSAN
  __tsan_acquire(const_cast<void*>(data));
#else
  (void)data;
#endif
}

constexpr std::array<std::pair<Command, std::string_view>, 36> kCommands = {{
    {Command::kHello, "HELLO"},
    {Command::kWelcome, "WELCOME"},
    {Command::kDispatch, "DISPATCH"},
    {Command::kResult, "RESULT"},
    {Command::kAck, "ACK"},
    {Command::kCancel, "CANCEL"},
    {Command::kHeartbeat, "HEARTBEAT"},
    {Command::kDisconnect, "DISCONNECT"},
    {Command::kSubmit, "SUBMIT"},
    {Command::kSubmitted, "SUBMITTED"},
    {Command::kTaskEvent, "TASK-EVENT"},
    {Command::kJobEvent, "JOB-EVENT"},
    {Command::kCancelJob, "CANCEL-JOB"},
    {Command::kWatch, "WATCH"},
    {Command::kStatusRequest, "STATUS"},
    {Command::kStatusReply, "STATUS-REPLY"},
    {Command::kWorkersRequest, "WORKERS"},
    {Command::kWorkersReply, "WORKERS-REPLY"},
    {Command::kRetryJob, "RETRY-JOB"},
    {Command::kLogsRequest, "LOGS-REQUEST"},
    {Command::kLogs, "LOGS"},
    {Command::kOk, "OK"},
    {Command::kError, "ERROR"},
    {Command::kDraining, "DRAINING"},
    {Command::kOutput, "OUTPUT"},
    {Command::kJobDone, "JOB-DONE"},
    {Command::kServiceReloaded, "SERVICE-RELOADED"},
    {Command::kServiceReload, "SERVICE-RELOAD"},
    {Command::kArtifactPut, "ARTIFACT-PUT"},
    {Command::kArtifactGet, "ARTIFACT-GET"},
    {Command::kArtifactChunk, "ARTIFACT-CHUNK"},
    {Command::kArtifactCredit, "ARTIFACT-CREDIT"},
    {Command::kArtifactDone, "ARTIFACT-DONE"},
    {Command::kPipelinesRequest, "PIPELINES"},
    {Command::kPipelinesReply, "PIPELINES-REPLY"},
    {Command::kPipelineRun, "PIPELINE-RUN"},
}};

bool KnownCommand(uint8_t byte) {
  for (const auto& [c, _] : kCommands) {
    if (static_cast<uint8_t>(c) == byte) return true;
  }
  return false;
}

std::string HeaderFrame() {
  std::string h(kHeaderPrefix);
  h.push_back(static_cast<char>(kVersion));
  return h;
}

// Drains the remaining frames of a multipart message after an error.
void DrainRest(zmq::socket_t& socket, zmq::message_t& last) {
  while (last.more()) {
    if (!socket.recv(last, zmq::recv_flags::none)) return;
  }
}

// Receives the next frame of a multipart message whose first frame arrived;
// ZeroMQ delivers multipart messages whole, so this does not wait.
void NextFrame(zmq::socket_t& socket, zmq::message_t& frame) {
  if (!socket.recv(frame, zmq::recv_flags::none)) {
    throw zmq::error_t();  // only on EAGAIN, which cannot happen mid-message
  }
  TakeOver(frame.data());
}

}  // namespace

std::string_view CommandName(Command c) {
  for (const auto& [cmd, name] : kCommands) {
    if (cmd == c) return name;
  }
  return "UNKNOWN";
}

Status Send(zmq::socket_t& socket, const Message& m) {
  static const std::string header = HeaderFrame();
  const uint8_t command = static_cast<uint8_t>(m.command);
  try {
    const auto flags = zmq::send_flags::dontwait | zmq::send_flags::sndmore;
    if (!m.routing_id.empty()) {
      if (!socket.send(zmq::buffer(m.routing_id), flags)) {
        return Unavailable("peer queue full");
      }
    }
    if (!socket.send(zmq::buffer(header), flags)) return Unavailable("peer queue full");
    // Once the first frame is queued, the rest of the message goes too
    // (ZeroMQ queues multipart messages atomically).
    socket.send(zmq::buffer(&command, 1), zmq::send_flags::sndmore);
    const bool has_payloads = !m.payloads.empty();
    socket.send(zmq::buffer(m.body),
                has_payloads ? zmq::send_flags::sndmore : zmq::send_flags::none);
    for (size_t i = 0; i < m.payloads.size(); ++i) {
      const bool last = i + 1 == m.payloads.size();
      socket.send(zmq::buffer(m.payloads[i]),
                  last ? zmq::send_flags::none : zmq::send_flags::sndmore);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return Unavailable("peer is gone");
    return Unavailable(std::string("send failed: ") + e.what());
  }
  return Status::Ok();
}

namespace {

// A frame handed to ZeroMQ by SendCounted: the bytes, and the counter they
// are taken off when ZeroMQ frees them.
struct CountedFrame {
  std::string data;
  int64_t counted = 0;
  std::shared_ptr<std::atomic<int64_t>> queued;
};

void ReleaseCountedFrame(void* data, void* hint) {
  auto* frame = static_cast<CountedFrame*>(hint);
  TakeOver(frame);
  TakeOver(data);
  frame->queued->fetch_sub(frame->counted, std::memory_order_relaxed);
  delete frame;
}

zmq::message_t CountedMessage(std::string&& data, int64_t counted,
                              const std::shared_ptr<std::atomic<int64_t>>& queued) {
  auto* frame = new CountedFrame{std::move(data), counted, queued};
  queued->fetch_add(counted, std::memory_order_relaxed);
  char* bytes = frame->data.data();
  const size_t size = frame->data.size();
  // ZeroMQ owns `frame` from here: ReleaseCountedFrame deletes it, also
  // when the message is never sent (the message_t's destructor closes it).
  // This thread does not touch it again.
  HandOver(frame);
  HandOver(bytes);
  return zmq::message_t(bytes, size, &ReleaseCountedFrame, frame);
}

using google::protobuf::io::CodedOutputStream;

// A length-delimited field (wire type 2): its tag, its length, its bytes.
uint32_t LengthDelimitedTag(int field) { return static_cast<uint32_t>(field) << 3 | 2; }

// Writes the tag of `field` and `length`, then `bytes` (the field's first
// bytes, or all of them when length == bytes.size()).
void PutLengthDelimited(CodedOutputStream& coded, int field, std::string_view bytes,
                        size_t length) {
  coded.WriteTag(LengthDelimitedTag(field));
  coded.WriteVarint64(length);
  coded.WriteRaw(bytes.data(), static_cast<int>(bytes.size()));
}

}  // namespace

void AppendTaskEventEntry(std::string* batch, std::string_view entry) {
  google::protobuf::io::StringOutputStream sink(batch);  // appends
  CodedOutputStream coded(&sink);
  PutLengthDelimited(coded, wire::TaskEvent::kMoreFieldNumber, entry, entry.size());
}

namespace {

// A packed repeated uint64 `field`: its tag, its length, the varints.
void AppendPackedIds(std::string* body, int field, const std::vector<uint64_t>& ids) {
  if (ids.empty()) return;  // proto3 leaves an empty list out
  size_t length = 0;
  for (uint64_t id : ids) length += CodedOutputStream::VarintSize64(id);
  google::protobuf::io::StringOutputStream sink(body);  // appends
  CodedOutputStream coded(&sink);
  coded.WriteTag(LengthDelimitedTag(field));
  coded.WriteVarint64(length);
  for (uint64_t id : ids) coded.WriteVarint64(id);
}

}  // namespace

void AppendDispatchAcks(std::string* dispatch, const std::vector<uint64_t>& ids) {
  AppendPackedIds(dispatch, wire::Dispatch::kAcksFieldNumber, ids);
}

void AppendResultStarts(std::string* result, const std::vector<uint64_t>& ids) {
  AppendPackedIds(result, wire::Result::kStartedFieldNumber, ids);
}

void AppendResultEntry(std::string* batch, std::string_view entry, std::string_view out,
                       std::string_view err) {
  auto size = [&](int field, std::string_view bytes) {
    return CodedOutputStream::VarintSize32(LengthDelimitedTag(field)) +
           CodedOutputStream::VarintSize64(bytes.size()) + bytes.size();
  };
  google::protobuf::io::StringOutputStream sink(batch);  // appends
  CodedOutputStream coded(&sink);
  auto put = [&](int field, std::string_view bytes, size_t length) {
    PutLengthDelimited(coded, field, bytes, length);
  };
  // Empty bytes are left out, as proto3 leaves out every default.
  put(wire::Result::kMoreFieldNumber, entry,
      entry.size() + (out.empty() ? 0 : size(wire::Result::kStdoutDataFieldNumber, out)) +
          (err.empty() ? 0 : size(wire::Result::kStderrDataFieldNumber, err)));
  if (!out.empty()) put(wire::Result::kStdoutDataFieldNumber, out, out.size());
  if (!err.empty()) put(wire::Result::kStderrDataFieldNumber, err, err.size());
}

size_t CountedBytes(const Message& m) {
  size_t n = kMessageOverhead + m.body.size();
  for (const auto& p : m.payloads) n += p.size();
  return n;
}

Status SendCounted(zmq::socket_t& socket, Message&& m,
                   const std::shared_ptr<std::atomic<int64_t>>& queued) {
  static const std::string header = HeaderFrame();
  const uint8_t command = static_cast<uint8_t>(m.command);
  // Every frame is built before the first is sent, so that nothing can
  // fail once part of the message is queued.
  std::vector<zmq::message_t> frames;
  frames.reserve(1 + m.payloads.size());
  const int64_t body_counted = static_cast<int64_t>(kMessageOverhead + m.body.size());
  frames.push_back(CountedMessage(std::move(m.body), body_counted, queued));
  for (auto& p : m.payloads) {
    const auto size = static_cast<int64_t>(p.size());
    frames.push_back(CountedMessage(std::move(p), size, queued));
  }
  m.body.clear();
  m.payloads.clear();
  try {
    const auto flags = zmq::send_flags::dontwait | zmq::send_flags::sndmore;
    if (!m.routing_id.empty()) {
      if (!socket.send(zmq::buffer(m.routing_id), flags)) {
        return Unavailable("peer queue full");
      }
    }
    if (!socket.send(zmq::buffer(header), flags)) return Unavailable("peer queue full");
    // Once the first frame is queued, the rest of the message goes too
    // (ZeroMQ queues multipart messages atomically).
    socket.send(zmq::buffer(&command, 1), zmq::send_flags::sndmore);
    for (size_t i = 0; i < frames.size(); ++i) {
      const bool last = i + 1 == frames.size();
      socket.send(frames[i], last ? zmq::send_flags::none : zmq::send_flags::sndmore);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return Unavailable("peer is gone");
    return Unavailable(std::string("send failed: ") + e.what());
  }
  return Status::Ok();
}

std::optional<Result<Message>> Receive(zmq::socket_t& socket, bool router,
                                       const Limits& limits,
                                       std::optional<std::string>* wrong_version,
                                       std::string* from) {
  if (wrong_version) wrong_version->reset();
  if (from) from->clear();
  Message m;
  zmq::message_t frame;
  try {
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) return std::nullopt;
    TakeOver(frame.data());
    size_t total = frame.size();
    if (router) {
      m.routing_id.assign(frame.data<char>(), frame.size());
      if (from) *from = m.routing_id;
      if (!frame.more()) return Result<Message>(InvalidArgument("empty message"));
      NextFrame(socket, frame);
      total += frame.size();
    }
    // Header frame.
    const std::string_view header(frame.data<char>(), frame.size());
    if (header.size() != kHeaderPrefix.size() + 1 ||
        header.substr(0, kHeaderPrefix.size()) != kHeaderPrefix) {
      DrainRest(socket, frame);
      return Result<Message>(InvalidArgument("not a drover message (bad header frame)"));
    }
    const uint8_t version = static_cast<uint8_t>(header.back());
    if (version != kVersion) {
      DrainRest(socket, frame);
      if (wrong_version) *wrong_version = m.routing_id;
      return Result<Message>(InvalidArgument(
          "protocol version " + std::to_string(version) + " is not supported (this is " +
          std::to_string(kVersion) + ")"));
    }
    if (!frame.more()) return Result<Message>(InvalidArgument("missing command frame"));
    NextFrame(socket, frame);
    total += frame.size();
    if (frame.size() != 1 || !KnownCommand(*frame.data<uint8_t>())) {
      DrainRest(socket, frame);
      return Result<Message>(InvalidArgument("unknown command"));
    }
    m.command = static_cast<Command>(*frame.data<uint8_t>());
    // ZAP's User-Id is the CURVE key; the role and name come with it.
    if (const char* key = zmq_msg_gets(frame.handle(), "User-Id"); key != nullptr) {
      m.peer.key = key;
      const char* role = zmq_msg_gets(frame.handle(), kRoleProperty);
      m.peer.role = role != nullptr ? ParseRole(role).value_or(Role::kNone) : Role::kNone;
      if (const char* name = zmq_msg_gets(frame.handle(), kKeyNameProperty))
        m.peer.name = name;
    }
    if (m.command == Command::kHello) {
      // Only tcp:// (and ipc://) connections carry a peer address.
      const char* address = zmq_msg_gets(frame.handle(), "Peer-Address");
      if (address != nullptr) m.peer_address = address;
    }
    if (!frame.more()) return Result<Message>(InvalidArgument("missing body frame"));
    NextFrame(socket, frame);
    total += frame.size();
    if (frame.size() > limits.max_body) {
      DrainRest(socket, frame);
      return Result<Message>(InvalidArgument("body of " + std::to_string(frame.size()) +
                                             " bytes is over the limit"));
    }
    m.body.assign(frame.data<char>(), frame.size());
    while (frame.more()) {
      NextFrame(socket, frame);
      total += frame.size();
      if (m.payloads.size() >= limits.max_payload_frames || total > limits.max_message) {
        DrainRest(socket, frame);
        return Result<Message>(InvalidArgument("message over the size or frame limit"));
      }
      m.payloads.emplace_back(frame.data<char>(), frame.size());
    }
  } catch (const zmq::error_t& e) {
    return Result<Message>(Unavailable(std::string("receive failed: ") + e.what()));
  }
  return Result<Message>(std::move(m));
}

}  // namespace drover::protocol
