// Coordinator::Loop, requests served off the loop: STATUS, LOGS-REQUEST and
// WATCH of jobs the loop does not run, and what a RETRY-JOB reads of the
// job it retries, come from the store reader on its thread
// (store_reader.h); the loop sends the answers (and admits the retries).
// A SUBMIT's spec loaded by the spec loader (spec_loader.h) holds its
// client the same way. While one of a client's requests is served off the
// loop, what the client sends next waits (held_), so that its replies come
// in the order of its requests (docs/protocol.md, "Client dialog").
#include "core/coordinator/loop.h"

namespace drover {

void Coordinator::Loop::ReadOffLoop(StoreReader::Read r) {
  const std::string rid = r.routing_id;
  const std::string drawn = r.new_job_id;  // a RETRY-JOB's or a resume's
  if (!reader_->Submit(std::move(r))) {
    if (!drawn.empty()) pending_ids_.erase(drawn);  // no job will have it
    // Its own messages wait for nothing: this ERROR keeps their order.
    return ReplyError(rid, "the coordinator has " +
                               std::to_string(StoreReader::kMaxQueued) +
                               " reads of stored jobs waiting; try again shortly");
  }
  held_.try_emplace(rid);  // what it sends next waits for the answer
}

bool Coordinator::Loop::HoldBehindRead(Message& m) {
  if (held_.empty()) return false;
  auto h = held_.find(m.routing_id);
  if (h == held_.end()) return false;
  Held& held = h->second;
  const size_t bytes = protocol::CountedBytes(m);
  if (held.messages.size() < kMaxHeld && held.bytes + bytes <= kMaxHeldBytes) {
    held.bytes += bytes;
    held.messages.push_back(std::move(m));
  } else {
    stats_.ignored.fetch_add(1, std::memory_order_relaxed);
    Note(m.routing_id, "held", spdlog::level::warn,
         "dropped a message from " + PeerName(m.routing_id) + ": " +
             std::to_string(held.messages.size()) + " messages (" +
             std::to_string(held.bytes) + " bytes) already wait for the answer to its " +
             "read, and at most " + std::to_string(kMaxHeld) + " (" +
             std::to_string(kMaxHeldBytes) + " bytes) may");
  }
  return true;
}

void Coordinator::Loop::AnswerReads() {
  if (!reader_) return;
  for (StoreReader::Answer& a : reader_->TakeDone()) {
    const std::string rid = a.read.routing_id;
    if (a.read.kind == StoreReader::Kind::kRetry ||
        a.read.kind == StoreReader::Kind::kResume) {
      pending_ids_.erase(a.read.new_job_id);
    }
    SendAnswer(a);
    stats_.reads_answered.fetch_add(1, std::memory_order_relaxed);
    ReleaseHeld(rid);
  }
}

void Coordinator::Loop::ReleaseHeld(const std::string& rid) {
  auto h = held_.find(rid);
  if (h == held_.end()) return;
  std::deque<Message> later = std::move(h->second.messages);
  held_.erase(h);
  if (auto q = peer_queues_.find(rid); q != peer_queues_.end() && q->second.dropped) {
    // Over its send budget (perhaps with the answer just sent): not heard,
    // as what it sends from now on is not.
    stats_.ignored.fetch_add(later.size(), std::memory_order_relaxed);
    return;
  }
  // What the client sent meanwhile, in order, until one more of its
  // messages is served off the loop: the rest waits for that one.
  while (!later.empty()) {
    Message next = std::move(later.front());
    later.pop_front();
    Handle(std::move(next));
    if (auto again = held_.find(rid); again != held_.end()) {
      for (Message& rest : later) {
        again->second.bytes += protocol::CountedBytes(rest);
        again->second.messages.push_back(std::move(rest));
      }
      return;
    }
  }
}

void Coordinator::Loop::SendAnswer(StoreReader::Answer& a) {
  const std::string& rid = a.read.routing_id;
  switch (a.command) {
    case Command::kStatusReply: {
      const wire::StatusRequest& req = a.read.status;
      Message reply;
      reply.routing_id = rid;
      reply.command = Command::kStatusReply;
      for (StoreReader::Answer::Listed& l : a.listed) {
        auto live = l.live ? jobs_.end() : jobs_.find(l.job_id);
        if (live == jobs_.end()) {
          if (reply.body.empty()) {
            reply.body = std::move(l.bytes);  // one job's reply: not copied
          } else {
            reply.body += l.bytes;
          }
          continue;
        }
        // A job that runs now (submitted or retried since the read, or
        // listed running) is shown as the loop knows it: its rows lag its
        // plan.
        google::protobuf::Arena arena(StatusArena());
        auto* alone = google::protobuf::Arena::CreateMessage<wire::StatusReply>(&arena);
        StatusOf(live->second->record, req.tasks(), a.read.page,
                 !req.job_id().empty() && req.groups(), alone->add_jobs());
        alone->AppendToString(&reply.body);
      }
      if (req.metrics()) {
        wire::StatusReply metrics;
        metrics.set_metrics(MetricsText());
        metrics.AppendToString(&reply.body);
      }
      return Queue(std::move(reply));
    }
    case Command::kLogs:
      return Reply(rid, Command::kLogs, a.logs, std::move(a.frames));
    case Command::kJobEvent:
      return Reply(rid, Command::kJobEvent, a.event);
    case Command::kSubmitted:  // a RETRY-JOB's or a resuming SUBMIT's reads
      if (a.read.kind == StoreReader::Kind::kResume) return AdmitResumed(a);
      if (jobs_.count(a.old.id)) {
        return ReplyError(
            rid, "job " + a.old.id + " is still running; wait for it or cancel it first");
      }
      return AdmitRetry(rid, a.read.peer, a.read.retry, a.old, std::move(a.job),
                        a.carried);
    default:
      return ReplyError(rid, a.error);
  }
}

void Coordinator::Loop::AdmitResumed(StoreReader::Answer& a) {
  const std::string& rid = a.read.routing_id;
  if (!a.spec_errors.empty()) {
    wire::Submitted reply;
    for (const auto& e : a.spec_errors) reply.add_errors(e);
    return Reply(rid, Command::kSubmitted, reply);
  }
  // The reader saw every commit made before it began; what the loop did
  // since may have changed the run to resume.
  const std::string& name = a.job->spec.name;
  for (const auto& [id, job] : jobs_) {
    if (job->spec.name == name) return ReplyStillRunning(rid, job->record);
  }
  auto latest = store_->LatestJobId(name);
  if (!latest.ok()) return ReplyError(rid, latest.status().ToString());
  if (latest->value_or("") != (a.resumes ? a.old.id : "")) {
    return ReplyError(rid, "a job named " + name +
                               " was submitted while this one's resume was read; "
                               "submit it again to resume the latest");
  }
  std::optional<store::JobRecord> previous;
  if (a.resumes) previous = std::move(a.old);
  AdmitBuilt({.routing_id = rid,
              .peer = a.read.peer,
              .submit = std::move(a.read.submit),
              .job_id = {},
              .jitter_seed = 0},
             std::move(a.job), previous, a.carried);
}

}  // namespace drover
