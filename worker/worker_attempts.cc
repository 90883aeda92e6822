// The worker's part of an attempt's way (docs/protocol.md): a DISPATCH
// taken (StartDispatch: its files, its inputs, its services), the attempt
// submitted to its backend, the driven backends turned, the backend's
// report taken (Complete: its capture files, its $DROVER_OUTPUT, its
// artifacts), and its RESULT sent and kept until ACKed (SendResults).
#include <fcntl.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/process/adaptive_spin.h"
#include "core/protocol/codec.h"
#include "core/protocol/convert.h"
#include "worker/output_tail.h"
#include "worker/outputs.h"
#include "worker/worker_loop.h"

namespace drover {
namespace {

using protocol::Command;
using protocol::Message;

// Reads the captured stream at `path` (absent: empty) and removes the file.
std::string TakeFile(const std::filesystem::path& path) {
  std::string data;
  std::ifstream in(path, std::ios::binary);
  if (!in) return data;
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size > 0) {
    const auto keep =
        std::min<std::streamoff>(size, static_cast<std::streamoff>(kMaxResultStream));
    in.seekg(size - keep, std::ios::beg);
    data.resize(static_cast<size_t>(keep));
    in.read(data.data(), keep);
    data.resize(static_cast<size_t>(in.gcount()));
  }
  in.close();
  std::error_code ec;
  std::filesystem::remove(path, ec);
  return data;
}

}  // namespace

void Worker::Loop::HandleDispatch(const Message& m) {
  auto d = protocol::Parse<wire::Dispatch>(m);
  if (!d.ok()) {
    spdlog::warn("worker {}: {}", options_.name, d.status().message());
    return;
  }
  // The ACK that rides on it (Hello.takes_dispatch_acks) comes first, as
  // it would have come in a message of its own.
  for (uint64_t id : d->acks()) unacked_.erase(id);
  d->clear_acks();
  // A batch (docs/protocol.md, "Batches"): the head, then each entry.
  auto more = std::move(*d->mutable_more());
  d->clear_more();
  HandleOneDispatch(*d);
  for (wire::Dispatch& entry : more) {
    if (entry.more_size() > 0) {
      spdlog::warn(
          "worker {}: a DISPATCH entry with attempts of its own (attempt {}); dropped",
          options_.name, entry.attempt_id());
      continue;
    }
    HandleOneDispatch(entry);
  }
}

void Worker::Loop::StartDispatch(wire::Dispatch& dispatch) {
  wire::Dispatch* d = &dispatch;
  const uint64_t id = d->attempt_id();
  // From here on every path enters it in running_, and Complete ends it.
  metrics_->AttemptStarted(d->backend());
  if (draining_) {
    // It crossed our DRAINING on the wire (docs/protocol.md): hand it back.
    AttemptOutcome o;
    o.reason = FailureReason::kWorkerLost;
    o.message = "worker " + options_.name + " is draining";
    running_[id] = Running{d->backend(), {}, {}};
    return Complete(id, std::move(o));
  }
  TaskAttempt a;
  a.attempt_id = id;
  a.job_id = d->job_id();
  a.task = d->task();
  a.number = d->attempt();
  a.timeout = std::chrono::milliseconds(d->timeout_ms());
  a.kill_grace = std::chrono::milliseconds(d->kill_grace_ms());
  a.output_limit = std::min<uint64_t>(
      d->output_limit() ? d->output_limit() : kMaxResultStream, kMaxResultStream);
  a.payload = std::move(*d->mutable_payload());
  if (std::optional<std::string> missing = MissingWorkerService(*d)) {
    AttemptOutcome o;
    o.reason = FailureReason::kLaunchFailed;
    o.message = std::move(*missing);
    running_[id] = Running{d->backend(), {}, {}};
    return Complete(id, std::move(o));
  }
  auto b = backends_.find(d->backend());
  if (b == backends_.end()) {
    AttemptOutcome o;
    o.reason = FailureReason::kLaunchFailed;
    o.message = "worker " + options_.name + " has no '" + d->backend() + "' backend";
    running_[id] = Running{d->backend(), {}, {}};
    return Complete(id, std::move(o));
  }
  // What every task can read about itself, like Slurm's SLURM_JOB_ID; the
  // task's own env comes after (its backend appends it), so a spec may
  // override them. Every backend gets them (docs/backends/adding-a-backend.md).
  a.env.reserve(5);
  a.env.emplace_back("DROVER_JOB_ID", d->job_id());
  a.env.emplace_back("DROVER_TASK", d->task());
  a.env.emplace_back("DROVER_ATTEMPT", std::to_string(d->attempt()));
  a.env.emplace_back("DROVER_WORKER", options_.name);
  // The files below only for a backend that uses them: a threads attempt
  // made 7 allocations for capture paths it never writes.
  const bool takes_env = b->second->TakesEnvironment();
  // The capture files' names, joined as strings (a path operator/ costs
  // more than the rest of this function's string work together).
  std::string stem;
  if (takes_env || b->second->CapturesOutput()) {
    stem = options_.spool_dir.native();
    if (!stem.empty() && stem.back() != '/') stem += '/';
    stem += std::to_string(id);
  }
  if (b->second->CapturesOutput()) {
    a.stdout_path = stem + ".out";
    a.stderr_path = stem + ".err";
  }
  // Where the task writes its outputs: created empty here, so that
  // `echo k=v >> "$DROVER_OUTPUT"` works from the first line. Only for a
  // backend whose tasks see the environment (Backend::TakesEnvironment).
  std::filesystem::path outputs_file;
  if (takes_env) {
    stem += ".outputs";
    MakeOutputsFile(stem);
    outputs_file = stem;
    a.env.emplace_back("DROVER_OUTPUT", std::move(stem));
  }
  services::ServiceNeeds needs;
  for (const wire::Service& s : d->services())
    needs.job.push_back(protocol::ServiceFromWire(s));
  needs.worker.assign(d->worker_services().begin(), d->worker_services().end());
  Running& r = running_[id];
  if (a.stdout_path.empty()) {
    r = Running{d->backend(), {}, {}, {}, {}, !needs.empty(), outputs_file};
  } else {
    r = Running{d->backend(),
                a.stdout_path,
                a.stderr_path,
                OutputTail(a.stdout_path, a.output_limit),
                OutputTail(a.stderr_path, a.output_limit),
                !needs.empty(),
                outputs_file};
  }
  // It holds its slots until it ends (Complete gives them back).
  const uint32_t need = std::max<uint32_t>(1, d->slots());
  r.slots = need;
  backlog_[d->backend()].used += need;
  if (d->artifacts_size() == 0 && d->inputs_size() == 0) {
    return SubmitAttempt(id, std::move(a), std::move(needs), *b->second);
  }
  Backend* backend = b->second.get();
  auto held = std::make_shared<services::ServiceNeeds>(std::move(needs));
  PrepareArtifacts(id, *d, a, [this, id, held, backend](TaskAttempt ready) {
    SubmitAttempt(id, std::move(ready), std::move(*held), *backend);
  });
}

void Worker::Loop::MakeOutputsFile(const std::string& file) {
  while (!spare_outputs_.empty()) {
    std::string spare = std::move(spare_outputs_.back());
    spare_outputs_.pop_back();
    if (::rename(spare.c_str(), file.c_str()) == 0) return;
  }
  // open(2), not an ofstream (whose buffer and locale added about 3 us a
  // file). A file that cannot be made here is made by the task's first
  // `>>`, or the task has no outputs.
  if (const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
      fd >= 0) {
    ::close(fd);
  }
}

void Worker::Loop::SubmitAttempt(uint64_t id, TaskAttempt a, services::ServiceNeeds needs,
                                 Backend& backend) {
  // An attempt that needs services reaches its backend through services_,
  // once they are up (their addresses in a.services).
  const Status s = needs.empty()
                       ? backend.Submit(std::move(a))
                       : services_.Submit(backend, std::move(a), std::move(needs));
  if (!s.ok()) {
    AttemptOutcome o;
    o.reason = FailureReason::kInternal;
    o.message = s.ToString();
    Complete(id, std::move(o));
  }
}

thread_local const Worker::Loop* Worker::Loop::current_loop = nullptr;

void Worker::Loop::PollBackends(const zmq::pollitem_t* ready) {
  for (size_t i = 0; i < driven_.size(); ++i) {
    Backend* b = driven_[i];
    if ((ready != nullptr && (ready[i].revents & ZMQ_POLLIN)) ||
        b->PollTimeoutMs() == 0) {
      b->Poll();
    }
  }
}

void Worker::Loop::WaitForTurn(std::vector<zmq::pollitem_t>& items,
                               std::chrono::milliseconds timeout) {
  std::chrono::nanoseconds spin{0};
  for (Backend* b : driven_) spin = std::max(spin, b->SpinBeforeWait());
  // Never past the wait's own timeout: the loop's deadlines still hold.
  spin = std::min<std::chrono::nanoseconds>(spin, timeout);
  // A backend may also have an answer that no descriptor shows (a cow
  // process's reply in shared memory): its PollTimeoutMs() is then 0.
  auto due = [&] {
    return std::any_of(driven_.begin(), driven_.end(),
                       [](const Backend* b) { return b->PollTimeoutMs() == 0; });
  };
  if (spin <= std::chrono::nanoseconds(0)) return socket_wait_.Wait(items, timeout);
  for (Backend* b : driven_) b->Spinning(true);
  const bool ready = SpinUntil(spin, [&] {
    if (due()) return true;
    socket_wait_.Wait(items, std::chrono::milliseconds(0));
    return std::any_of(items.begin(), items.end(),
                       [](const zmq::pollitem_t& item) { return item.revents != 0; });
  });
  for (Backend* b : driven_) b->Spinning(false);
  if (!ready) socket_wait_.Wait(items, due() ? std::chrono::milliseconds(0) : timeout);
}

void Worker::Loop::DrainCompletions() {
  std::deque<std::pair<uint64_t, AttemptOutcome>> done;
  completed_here_ = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(done_);
  }
  for (auto& [id, outcome] : done) Complete(id, std::move(outcome));
}

void Worker::Loop::Complete(uint64_t id, AttemptOutcome outcome) {
  auto r = running_.find(id);
  if (r == running_.end()) return;
  // A success is reported only once its artifacts are stored: the upload
  // comes first, and calls Complete again (docs/protocol.md).
  if (UploadArtifacts(id, r->second, outcome)) return;
  // What was printed since the last OUTPUT goes out before the RESULT, so
  // a follower (`submit --follow`, `logs -f`) sees short tasks' output too.
  if (registered_ && (outcome.out.bytes || outcome.err.bytes))
    StreamOutputOf(id, r->second);
  if (CollectOutputs(r->second.outputs_file, &outcome,
                     /*keep_empty=*/spare_outputs_.size() < kMaxSpareOutputs)) {
    spare_outputs_.push_back(r->second.outputs_file.native());
  }
  Message m = protocol::Make(Command::kResult,
                             protocol::OutcomeToWire(id, options_.name, outcome));
  // A stream that produced nothing has no file (the backend creates it on
  // the first byte), so skip the syscalls.
  m.payloads.push_back(outcome.out.bytes ? TakeFile(r->second.out) : std::string());
  m.payloads.push_back(outcome.err.bytes ? TakeFile(r->second.err) : std::string());
  const bool uses_services = r->second.uses_services;
  if (r->second.slots > 0) {
    Backlog& q = backlog_[r->second.backend];
    q.used -= std::min(q.used, r->second.slots);
  }
  metrics_->AttemptEnded(r->second.backend, ReasonName(outcome.reason), outcome.wall);
  RemoveAttemptDirs(r->second);
  running_.erase(r);
  // Its services may go idle. Only attempts that hold a lease: the others
  // need not take services_' lock at all.
  if (uses_services) services_.AttemptEnded(id);
  if (registered_) unsent_.push_back(id);
  unacked_.emplace(id, std::move(m));
}

void Worker::Loop::SendResults() {
  if (!registered_) {
    unsent_.clear();  // they go after the next WELCOME, with every unACKed one
    return;
  }
  // A batch stays far below the 4 MiB body limit; a result with much
  // output goes alone, in its payload frames.
  constexpr size_t kBatchBytes = 1 << 20;
  constexpr size_t kInlineOutput = 64 << 10;
  // The batch is built as bytes (protocol::AppendResultEntry): each
  // result is encoded once, when it ends, and never parsed back.
  std::optional<Message> batch;
  uint32_t entries = 0;
  size_t batch_bytes = 0;
  auto flush = [&] {
    if (!batch) return;
    Send(*batch);
    batch.reset();
    entries = 0;
    batch_bytes = 0;
  };
  for (uint64_t id : unsent_) {
    auto it = unacked_.find(id);
    if (it == unacked_.end()) continue;  // forgotten meanwhile (Welcome.unknown)
    const Message& m = it->second;
    if (coordinator_batch_ <= 1) {
      Send(m);
      continue;
    }
    const size_t output = m.payloads[0].size() + m.payloads[1].size();
    const size_t bytes = m.body.size() + output + 16;
    if (batch && (entries + 1 >= coordinator_batch_ ||
                  batch_bytes + bytes > kBatchBytes || output > kInlineOutput)) {
      flush();
    }
    if (!batch && output > kInlineOutput) {
      Send(m);
      continue;
    }
    if (!batch) {
      batch.emplace(m);  // the head: its output stays in payload frames
    } else {
      protocol::AppendResultEntry(&batch->body, m.body, m.payloads[0], m.payloads[1]);
      ++entries;
    }
    batch_bytes += bytes;
  }
  // The starts of this turn ride on its last RESULT when the coordinator
  // reads them there; in a copy of the stored RESULT, so a re-sent one
  // never reports them again.
  if (batch && coordinator_takes_starts_ && !starts_unreported_.empty()) {
    protocol::AppendResultStarts(&batch->body, starts_unreported_);
    starts_unreported_.clear();
  }
  flush();
  unsent_.clear();
}

}  // namespace drover
