// Coordinator::Loop, sending: the outbox a turn fills and Flush empties
// after its commit, each peer's budget of bytes queued in ZeroMQ (a peer
// that does not read is dropped), TASK-EVENT batches, replies and errors,
// the heartbeats to every listener and the DISCONNECT of a clean stop, and
// the rate-limited log of what peers did wrong.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "core/base/allocator.h"
#include "core/coordinator/loop.h"
#include "core/protocol/codec.h"

namespace drover {

std::set<std::string> Coordinator::Loop::Listeners() const {
  std::set<std::string> peers;
  for (const auto& [rid, w] : workers_) peers.insert(rid);
  for (const auto& [id, reload] : reloads_) peers.insert(reload.client);
  for (const Job* job : order_) {
    peers.insert(job->watchers.begin(), job->watchers.end());
    for (const auto& [t, rids] : job->log_followers)
      peers.insert(rids.begin(), rids.end());
  }
  return peers;
}

void Coordinator::Loop::SendHeartbeats() {
  // So that they can tell a quiet wait from a dead coordinator (and we
  // learn when they are gone).
  for (const auto& rid : Listeners()) {
    Message hb;
    hb.routing_id = rid;
    hb.command = Command::kHeartbeat;
    Queue(std::move(hb));
  }
}

void Coordinator::Loop::SayGoodbye() {
  // Straight to ZeroMQ, not through the outbox: a turn held while the
  // state disk is full may have left answers there that must not go out
  // uncommitted.
  wire::Disconnect bye;
  bye.set_reason("the coordinator is stopping");
  size_t told = 0;
  try {
    for (const auto& rid : Listeners()) {
      Message m = protocol::Make(Command::kDisconnect, bye);
      m.routing_id = rid;
      if (protocol::Send(*router_, m).ok()) ++told;
    }
    // The socket closes with the loop: give what was just queued a moment
    // to leave (a peer that is gone costs at most this, once).
    router_->set(zmq::sockopt::linger, 500);
  } catch (const zmq::error_t& e) {
    spdlog::debug("coordinator: goodbye: {}", e.what());  // the context is closing
  }
  spdlog::info("coordinator: stopping; told {} workers and clients", told);
}

void Coordinator::Loop::Flush() {
  CloseEventBatches();
  // ACKs go first, so that a worker forgets its results before it hears
  // anything else of this turn. To a worker that takes them, an ACK rides
  // on the DISPATCH of this turn when that is the first message it gets:
  // one message a task fewer for a worker of one slot.
  struct First {
    bool seen = false;            // its first message of the turn was found
    Message* dispatch = nullptr;  // and it is this DISPATCH
  };
  std::unordered_map<std::string_view, First> first;  // only workers with ACKs to send
  for (const auto& [rid, ids] : acks_) {
    auto w = workers_.find(rid);
    if (w != workers_.end() && w->second.takes_dispatch_acks) first[rid] = {};
  }
  for (Message& m : outbox_) {
    if (first.empty()) break;
    auto f = first.find(m.routing_id);
    if (f == first.end() || f->second.seen) continue;
    f->second = {true, m.command == Command::kDispatch ? &m : nullptr};
  }
  std::vector<Message> acks;
  acks.reserve(acks_.size());
  for (auto& [rid, ids] : acks_) {
    if (auto f = first.find(rid); f != first.end() && f->second.dispatch) {
      protocol::AppendDispatchAcks(&f->second.dispatch->body, ids);
      continue;
    }
    wire::Ack ack;
    for (uint64_t id : ids) ack.add_attempt_ids(id);
    acks.push_back(protocol::Make(Command::kAck, ack));
    acks.back().routing_id = rid;
  }
  acks_.clear();
  // Costs O(messages), whatever the number of peers: a peer's `pending`
  // only grows with a message in outbox_, so it is reset there.
  std::set<std::string> gone;
  auto send = [&](Message& m) {
    PeerQueue& q = peer_queues_[m.routing_id];
    q.pending = 0;  // handed over to ZeroMQ now, or never
    if (gone.count(m.routing_id)) return;
    if (q.dropped) {
      // Dropped after this message was queued, by a later one.
      stats_.unsent.fetch_add(1, std::memory_order_relaxed);
      gone.insert(m.routing_id);
      return;
    }
    const Command command = m.command;
    const Status s = protocol::SendCounted(*router_, std::move(m), q.in_zmq);
    if (!s.ok()) {
      spdlog::debug("coordinator: {} not delivered: {}", protocol::CommandName(command),
                    s.message());
      gone.insert(m.routing_id);
    }
  };
  for (Message& m : acks) send(m);
  for (Message& m : outbox_) send(m);
  outbox_.clear();
  SweepPeers();
  // A client that went away stops watching and following, and its
  // reloads are forgotten.
  if (!gone.empty()) ForgetClients(gone);
}

void Coordinator::Loop::Queue(Message m) {
  if (!event_batches_.empty()) CloseEventBatch(m.routing_id);
  Enqueue(std::move(m));
}

void Coordinator::Loop::Enqueue(Message m) {
  PeerQueue& q = peer_queues_[m.routing_id];
  if (q.dropped) {
    stats_.unsent.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const auto bytes = static_cast<int64_t>(protocol::CountedBytes(m));
  const int64_t queued = q.Queued();
  if (queued > 0 && queued + bytes > static_cast<int64_t>(options_.peer_send_budget)) {
    stats_.unsent.fetch_add(1, std::memory_order_relaxed);
    return DropPeer(m.routing_id, q, static_cast<size_t>(bytes));
  }
  q.pending += bytes;
  outbox_.push_back(std::move(m));
}

void Coordinator::Loop::SendTaskEvent(const std::string& rid, uint32_t max_batch,
                                      const std::string& body) {
  // A batch stays far below the 4 MiB body limit, as a DISPATCH batch does.
  constexpr size_t kBatchBytes = 1 << 20;
  if (max_batch > 1) {
    for (EventBatch& b : event_batches_) {
      if (b.message.routing_id != rid) continue;
      if (b.events < b.max && b.message.body.size() + body.size() + 16 <= kBatchBytes) {
        protocol::AppendTaskEventEntry(&b.message.body, body);
        ++b.events;
        return;
      }
      CloseEventBatch(rid);
      break;
    }
  }
  Message m;
  m.routing_id = rid;
  m.command = Command::kTaskEvent;
  m.body = body;
  if (max_batch <= 1) return Queue(std::move(m));
  // Opened after whatever was queued for the client before it.
  CloseEventBatch(rid);
  event_batches_.push_back({std::move(m), 1, max_batch});
}

void Coordinator::Loop::CloseEventBatch(const std::string& rid) {
  for (size_t i = 0; i < event_batches_.size(); ++i) {
    if (event_batches_[i].message.routing_id != rid) continue;
    Message m = std::move(event_batches_[i].message);
    event_batches_.erase(event_batches_.begin() + static_cast<std::ptrdiff_t>(i));
    return Enqueue(std::move(m));
  }
}

void Coordinator::Loop::CloseEventBatches() {
  std::vector<EventBatch> open = std::move(event_batches_);
  event_batches_.clear();
  for (EventBatch& b : open) Enqueue(std::move(b.message));
}

void Coordinator::Loop::DropPeer(const std::string& rid, PeerQueue& q,
                                 size_t next_bytes) {
  q.dropped = true;
  stats_.peers_dropped.fetch_add(1, std::memory_order_relaxed);
  // One line per drop: a dropped peer is not heard again until it drained.
  spdlog::warn(
      "coordinator: {} is not reading: {} bytes are queued for it and the next "
      "message ({} bytes) would pass its budget of {}; dropped (nothing more is "
      "sent to it or read from it until its queue drains)",
      PeerName(rid), q.Queued(), next_bytes, options_.peer_send_budget);
}

void Coordinator::Loop::SweepPeers() {
  std::set<std::string> dropped;
  for (auto it = peer_queues_.begin(); it != peer_queues_.end();) {
    PeerQueue& q = it->second;
    if (q.dropped) dropped.insert(it->first);
    if (q.Queued() > 0) {
      ++it;
      continue;
    }
    if (q.dropped) {
      spdlog::info("coordinator: {} (dropped) has nothing queued any more; forgotten",
                   PeerName(it->first));
      // The big buffers it held went back to malloc; give them back to the
      // system too, so that a peer that was dropped costs nothing after.
      ReleaseFreeMemory();
    }
    it = peer_queues_.erase(it);
  }
  if (dropped.empty()) return;
  // A dropped client stops watching and following, and its reloads are
  // forgotten; a dropped worker is removed in the next turn (ExpireWorkers),
  // where the store can record its lost attempts.
  ForgetClients(dropped);
}

void Coordinator::Loop::Note(const std::string& rid, std::string_view reason,
                             spdlog::level::level_enum level, const std::string& text) {
  uint64_t suppressed = 0;
  if (!log_limit_.Allow(rid, reason, clock_.Now(), &suppressed)) {
    stats_.log_lines_suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (suppressed == 0) {
    spdlog::log(level, "coordinator: {}", text);
  } else {
    spdlog::log(level, "coordinator: {} ({} more {} not logged before this one)", text,
                suppressed, reason);
  }
}

std::string Coordinator::Loop::PeerName(const std::string& rid) const {
  if (auto w = workers_.find(rid); w != workers_.end()) return "worker " + w->second.name;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = "peer 0x";
  for (unsigned char c : rid) {
    name.push_back(kHex[c >> 4]);
    name.push_back(kHex[c & 15]);
  }
  return name;
}

void Coordinator::Loop::Reply(const std::string& rid, Command c,
                              const google::protobuf::Message& body,
                              std::vector<std::string> payloads) {
  Message m;
  m.routing_id = rid;
  m.command = c;
  body.SerializeToString(&m.body);
  m.payloads = std::move(payloads);
  Queue(std::move(m));
}

void Coordinator::Loop::RefuseMalformed(const std::string& rid, const Status& malformed) {
  stats_.malformed.fetch_add(1, std::memory_order_relaxed);
  Note(rid, "bad bodies", spdlog::level::warn,
       PeerName(rid) + ": " + malformed.message());
  ReplyError(rid, malformed.message());
}

void Coordinator::Loop::ReplyError(const std::string& rid, const std::string& text) {
  wire::Error e;
  e.set_message(text);
  Reply(rid, Command::kError, e);
}

}  // namespace drover
