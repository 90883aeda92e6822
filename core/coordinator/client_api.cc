// Coordinator::Loop, the client API: SUBMIT, RETRY-JOB, CANCEL-JOB, WATCH,
// STATUS and LOGS-REQUEST (docs/protocol.md, "Client dialog"). WORKERS is
// answered in workers.cc.
#include <algorithm>

#include "core/artifacts/sha256.h"
#include "core/coordinator/dispatch_wire.h"
#include "core/coordinator/fanout.h"
#include "core/coordinator/job_ids.h"
#include "core/coordinator/job_views.h"
#include "core/coordinator/loop.h"
#include "core/coordinator/stored_status.h"

namespace drover {

std::optional<spec::JobSpec> Coordinator::Loop::TakeHandedOver(
    const wire::Submit& submit) {
  std::lock_guard<std::mutex> lock(handover_mu_);
  if (!handed_over_ || handed_over_->file != submit.spec_file() ||
      handed_over_->text != submit.spec_text()) {
    return std::nullopt;
  }
  std::optional<spec::JobSpec> spec = std::move(handed_over_->spec);
  handed_over_.reset();
  return spec;
}

void Coordinator::Loop::AddWatcher(Job& job, const std::string& rid, WatchMode mode) {
  job.watchers.insert(rid);
  if (mode.output) job.output_watchers.insert(rid);
  // A later WATCH from the same client says anew which events it wants.
  if (mode.problems_only) {
    job.quiet_watchers.insert(rid);
  } else {
    job.quiet_watchers.erase(rid);
  }
  if (mode.max_batch > 1) {
    job.batch_watchers[rid] = mode.max_batch;
  } else {
    job.batch_watchers.erase(rid);
  }
}

void Coordinator::Loop::HandleSubmit(const Message& m) {
  auto submit = protocol::Parse<wire::Submit>(m);
  if (!submit.ok()) return RefuseMalformed(m.routing_id, submit.status());
  SpecLoader::Request r{m.routing_id, m.peer, std::move(*submit)};
  if (auto spec = TakeHandedOver(r.submit)) {
    spec::LoadResult loaded;
    loaded.spec = std::move(spec);
    return AdmitSubmitted(r, std::move(loaded));
  }
  if (reader_ && r.submit.resume()) {
    // Its spec is loaded, the previous run's rows read and the job's state
    // built off the loop (a job of 100,000 tasks: about 0.5 s); AdmitResumed
    // when they are (reads.cc).
    const std::string id = FreshJobId();  // if there is no previous run
    pending_ids_.insert(id);
    return ReadOffLoop(
        {.routing_id = r.routing_id,
         .kind = StoreReader::Kind::kResume,
         .peer = r.peer,
         .new_job_id = id,
         .jitter_seed = options_.jitter_seed ? options_.jitter_seed : rng_(),
         .submit = std::move(r.submit)});
  }
  if (spec_loader_ &&
      (r.submit.spec_text().size() > kLoadHereBytes || spec_loader_->Busy())) {
    const std::string rid = r.routing_id;
    // What admission would draw: the loader builds a new job's state with
    // them (spec_loader.h).
    r.job_id = FreshJobId();
    r.jitter_seed = options_.jitter_seed ? options_.jitter_seed : rng_();
    const std::string id = r.job_id;
    if (!spec_loader_->Submit(std::move(r))) {
      // Its own messages wait for nothing: this ERROR keeps their order.
      return ReplyError(rid, "the coordinator is loading " +
                                 std::to_string(SpecLoader::kMaxPendingBytes >> 20) +
                                 " MiB of specs already; try again shortly");
    }
    pending_ids_.insert(id);
    held_.try_emplace(rid);  // its next messages wait for its SUBMITTED
    return;                  // AdmitLoaded admits it
  }
  spec::LoadResult loaded =
      spec::LoadString(r.submit.spec_text(), r.submit.spec_file(), options_.spec_options);
  AdmitSubmitted(r, std::move(loaded));
}

void Coordinator::Loop::AdmitLoaded() {
  if (!spec_loader_) return;
  for (SpecLoader::Done& d : spec_loader_->TakeDone()) {
    pending_ids_.erase(d.request.job_id);
    AdmitSubmitted(d.request, std::move(d.loaded), std::move(d.job));
    ReleaseHeld(d.request.routing_id);
  }
}

void Coordinator::Loop::AdmitSubmitted(const SpecLoader::Request& r,
                                       spec::LoadResult loaded,
                                       std::unique_ptr<Job> built) {
  if (built) return AdmitBuilt(r, std::move(built), std::nullopt, 0);
  if (!loaded.ok()) {
    wire::Submitted reply;
    for (const auto& e : loaded.errors) reply.add_errors(e.ToString());
    return Reply(r.routing_id, Command::kSubmitted, reply);
  }
  // Resume: the latest job of this name gives the tasks already done.
  std::optional<store::JobRecord> previous;
  std::vector<store::TaskRecord> old_rows;
  if (r.submit.resume()) {
    auto latest = store_->LatestJob(loaded.spec->name);
    if (!latest.ok()) return ReplyError(r.routing_id, latest.status().ToString());
    if (*latest) {
      previous = std::move(**latest);
      if (jobs_.count(previous->id)) return ReplyStillRunning(r.routing_id, *previous);
      auto rows = store_->Tasks(previous->id);
      if (!rows.ok()) return ReplyError(r.routing_id, rows.status().ToString());
      old_rows = std::move(*rows);
    }
  }
  std::string id = previous ? previous->id : FreshJobId();
  const uint64_t seed = options_.jitter_seed ? options_.jitter_seed : rng_();
  size_t carried = 0;
  auto job = BuildJobState(std::move(*loaded.spec), std::move(id), std::move(old_rows),
                           seed, &carried);
  AdmitBuilt(r, std::move(job), previous, carried);
}

void Coordinator::Loop::ReplyStillRunning(const std::string& rid,
                                          const store::JobRecord& latest) {
  ReplyError(rid, "job " + latest.id + " (" + latest.name +
                      ") is still running; cannot resume it");
}

void Coordinator::Loop::AdmitBuilt(const SpecLoader::Request& r, std::unique_ptr<Job> job,
                                   const std::optional<store::JobRecord>& previous,
                                   size_t carried) {
  const wire::Submit* submit = &r.submit;
  const spec::JobSpec& spec = job->spec;
  job->no_cache = submit->no_cache();
  for (const wire::InputPattern& in : submit->inputs()) {
    auto& files = job->inputs[in.pattern()];
    for (const wire::InputFile& f : in.files()) {
      if (f.path().empty() || !artifacts::IsSha256Hex(f.sha256())) {
        return ReplyError(r.routing_id, "Submit.inputs: input '" + in.pattern() +
                                            "' has a file without a path or a sha256 of "
                                            "64 lowercase hex digits");
      }
      files.emplace_back(f.path(), f.sha256());
    }
  }
  store::JobRecord& rec = job->record;  // its id: the previous run's, or FreshJobId's
  rec.name = spec.name;
  rec.spec_file = submit->spec_file();
  rec.spec_text = submit->spec_text();
  rec.cwd = submit->cwd();
  rec.submitter_key = r.peer.key;
  rec.submitter_name = r.peer.name;
  rec.state = dag::JobStateName(dag::JobState::kRunning);
  rec.priority = spec.priority;
  rec.created_ms = previous ? previous->created_ms : WallMillis(clock_);
  (void)Admit(std::move(job), previous.has_value(), r.routing_id,
              {.events = submit->watch(),
               .output = submit->watch() && submit->output(),
               .problems_only = submit->problems_only(),
               .max_batch = submit->max_batch()},
              static_cast<uint32_t>(carried));
}

void Coordinator::Loop::HandleRetryJob(const Message& m) {
  auto req = protocol::Parse<wire::RetryJob>(m);
  if (!req.ok()) return RefuseMalformed(m.routing_id, req.status());
  if (jobs_.count(req->job_id())) {
    return ReplyError(m.routing_id, "job " + req->job_id() +
                                        " is still running; wait for it or cancel it first");
  }
  const std::string new_id = FreshJobId(req->job_id());
  const uint64_t seed = options_.jitter_seed ? options_.jitter_seed : rng_();
  if (reader_) {
    pending_ids_.insert(new_id);  // until its answer (AnswerReads)
    // Its spec is loaded again, its rows read and the new job's state
    // built off the loop (a job of 100,000 tasks: about 500 ms); AdmitRetry
    // when they are (reads.cc).
    return ReadOffLoop({.routing_id = m.routing_id,
                        .kind = StoreReader::Kind::kRetry,
                        .retry = std::move(*req),
                        .peer = m.peer,
                        .new_job_id = new_id,
                        .jitter_seed = seed});
  }
  auto found = store_->GetJob(req->job_id());
  if (!found.ok()) return ReplyError(m.routing_id, found.status().ToString());
  if (!*found) return ReplyError(m.routing_id, "no job " + req->job_id());
  const store::JobRecord& old = **found;
  auto loaded = spec::LoadString(old.spec_text, old.spec_file, options_.spec_options);
  if (!loaded.ok()) {
    return ReplyError(m.routing_id, "the spec of job " + old.id + " no longer loads: " +
                                        loaded.errors.front().ToString());
  }
  auto rows = store_->Tasks(old.id);
  if (!rows.ok()) return ReplyError(m.routing_id, rows.status().ToString());
  size_t carried = 0;
  auto job =
      BuildJobState(std::move(*loaded.spec), new_id, std::move(*rows), seed, &carried);
  AdmitRetry(m.routing_id, m.peer, *req, old, std::move(job), carried);
}

std::string Coordinator::Loop::FreshJobId(const std::string& avoid) {
  std::string id = NewJobId(clock_.WallNow(), rng_);
  while (jobs_.count(id) || pending_ids_.count(id) || id == avoid) {
    id = NewJobId(clock_.WallNow(), rng_);
  }
  return id;
}

void Coordinator::Loop::AdmitRetry(const std::string& rid, const protocol::PeerKey& peer,
                                   const wire::RetryJob& req, const store::JobRecord& old,
                                   std::unique_ptr<Job> job, size_t carried) {
  store::JobRecord& rec = job->record;  // its id: FreshJobId's
  rec.name = job->spec.name;
  rec.spec_file = old.spec_file;
  rec.spec_text = old.spec_text;
  rec.cwd = old.cwd;
  rec.submitter_key = peer.key;  // who asked for the retry
  rec.submitter_name = peer.name;
  rec.state = dag::JobStateName(dag::JobState::kRunning);
  rec.priority = job->spec.priority;
  rec.created_ms = WallMillis(clock_);
  spdlog::info("coordinator: job {} retries job {}", rec.id, old.id);
  (void)Admit(std::move(job), /*replace=*/false, rid,
              {.events = req.watch(), .max_batch = req.max_batch()},
              static_cast<uint32_t>(carried));
}

bool Coordinator::Loop::Admit(std::unique_ptr<Job> job, bool replace, const std::string& rid,
                              WatchMode watch, uint32_t carried) {
  store::JobRecord& rec = job->record;
  rec.tasks = job->size();
  // The rows that differ from their first state (JobState::held): for a
  // new job, only its placeholders'.
  std::vector<store::TaskRecord> rows;
  for (const auto& row : job->held) {
    if (row) rows.push_back(*row);
  }
  const Status stored =
      replace ? store_->ReplaceTasks(rec, rows) : store_->InsertJob(rec, rows);
  if (!stored.ok()) {
    const std::string why = "cannot store the job: " + stored.ToString();
    if (rid.empty()) {
      spdlog::error("coordinator: job {} ({}): {}", rec.id, rec.name, why);
    } else {
      ReplyError(rid, why);
    }
    return false;
  }
  if (replace) {
    Check(store_->SetJobState(rec.id,
                              std::string(dag::JobStateName(dag::JobState::kRunning)), 0),
          "reopen job");
  }
  rows.clear();
  for (uint32_t t = 0; t < job->size(); ++t) {
    if (dag::IsTerminal(job->plan->state(t))) job->EndRow(t);  // carried over
  }
  StoreJobCache(*job);
  wire::Submitted reply;
  reply.set_job_id(rec.id);
  reply.set_tasks(job->size());
  reply.set_carried_over(carried);
  if (!rid.empty()) Reply(rid, Command::kSubmitted, reply);
  // Registered before the job can dispatch, so no event or line is missed.
  if (watch.events && !rid.empty()) AddWatcher(*job, rid, watch);
  spdlog::info("coordinator: job {} ({}) submitted: {} tasks, {} carried over", rec.id,
               rec.name, job->size(), carried);
  Job* raw = job.get();
  jobs_.emplace(rec.id, std::move(job));
  order_.push_back(raw);
  OrderJobs();
  MaybeFinishJob(*raw);  // everything carried over: done at once
  return true;
}

void Coordinator::Loop::HandleCancelJob(const Message& m) {
  auto req = protocol::Parse<wire::CancelJob>(m);
  if (!req.ok()) return RefuseMalformed(m.routing_id, req.status());
  auto it = jobs_.find(req->job_id());
  if (it == jobs_.end()) {
    auto state = store_->JobStateOf(req->job_id());  // not its spec
    if (state.ok() && *state) {
      return ReplyError(m.routing_id, "job " + req->job_id() + " has already finished (" +
                                          **state + ")");
    }
    return ReplyError(m.routing_id, "job " + req->job_id() + " is not running");
  }
  Job& job = *it->second;
  wire::Ok ok;
  if (req->task().empty()) {
    job.watchers.insert(m.routing_id);  // it gets the JOB-EVENT
    ok.set_message(job.cancelling ? "job " + job.record.id + " is already being cancelled"
                                  : "cancelling job " + job.record.id);
    Reply(m.routing_id, Command::kOk, ok);
    return CancelWholeJob(job);
  }

  const auto found = job.spec.Find(req->task());
  if (!found) {
    return ReplyError(m.routing_id, "job " + job.record.id + " has no task '" +
                                        req->task() + "'");
  }
  const uint32_t t = *found;
  dag::Plan& plan = *job.plan;
  const dag::TaskState s = plan.state(t);
  if (dag::IsTerminal(s)) {
    return ReplyError(m.routing_id, "task '" + req->task() + "' has already finished (" +
                                        std::string(dag::TaskStateName(s)) + ")");
  }
  if (s == dag::TaskState::kRunning) {
    if (!job.cancel_requested.insert(t).second) {
      ok.set_message("task '" + req->task() + "' is already being cancelled");
    } else {
      CancelRunning(job, {t});
      const store::TaskRecord& row = job.Row(t);  // running: held
      ok.set_message("cancelling task '" + req->task() + "' (attempt " +
                     std::to_string(row.attempts) + " on worker " + row.worker + ")");
    }
    return Reply(m.routing_id, Command::kOk, ok);
  }
  const uint32_t blocked_before = plan.counts().blocked;
  plan.CancelNotStarted(t);
  store::TaskRecord& row = job.Row(t);
  row.state = std::string(dag::TaskStateName(plan.state(t)));
  row.reason = std::string(ReasonName(FailureReason::kCancelled));
  row.detail = "cancelled before it started";
  row.finished_ms = WallMillis(clock_);
  row.pending_reason.clear();
  Check(store_->UpdateTask(row), "update task");
  ok.set_message("task '" + req->task() + "' cancelled before it started");
  Reply(m.routing_id, Command::kOk, ok);
  EmitTask(job, t, nullptr);
  job.EndRow(t);
  if (plan.counts().blocked != blocked_before) SyncRows(job);
  MaybeFinishJob(job);
}

void Coordinator::Loop::CancelWholeJob(Job& job) {
  if (job.cancelling) return;
  job.cancelling = true;
  CancelRunning(job, job.plan->CancelPending());
  SyncRows(job);
  MaybeFinishJob(job);
}

void Coordinator::Loop::HandleWatch(const Message& m) {
  auto req = protocol::Parse<wire::Watch>(m);
  if (!req.ok()) return RefuseMalformed(m.routing_id, req.status());
  if (auto it = jobs_.find(req->job_id()); it != jobs_.end()) {
    Job& job = *it->second;
    if (job.record.state != "running") {
      // It finished earlier in this turn (its JOB-EVENT went to the
      // watchers of then) and leaves memory at the commit: answer as for
      // any finished job.
      wire::JobEvent ev;
      ev.set_job_id(job.record.id);
      ev.set_state(job.record.state);
      *ev.mutable_counts() = CountsToWire(job.plan->counts());
      return Reply(m.routing_id, Command::kJobEvent, ev);
    }
    AddWatcher(job, m.routing_id,
               {.events = true,
                .output = req->output(),
                .problems_only = req->problems_only(),
                .max_batch = req->max_batch()});
    return;
  }
  // A job not running: the JOB-EVENT of its end, from the store (reads.cc).
  if (reader_) {
    return ReadOffLoop({.routing_id = m.routing_id,
                        .kind = StoreReader::Kind::kWatch,
                        .job_id = req->job_id()});
  }
  StoredEvent stored = EventOfStoredJob(*store_, req->job_id());
  if (!stored.error.empty()) return ReplyError(m.routing_id, stored.error);
  Reply(m.routing_id, Command::kJobEvent, stored.event);
}

void Coordinator::Loop::StatusOf(const store::JobRecord& listed, bool with_tasks,
                                 const TaskPage& page, bool with_groups,
                                 wire::JobStatus* out) {
  auto live = jobs_.find(listed.id);
  if (live == jobs_.end()) {
    *out = StoredJobStatus(*store_, listed, with_tasks, page, with_groups,
                           options_.spec_options);
    return;
  }
  RenderLiveStatus(*store_, *SnapshotStatus(*live->second, with_tasks, page, with_groups),
                   out);
}

std::unique_ptr<LiveStatus> Coordinator::Loop::SnapshotStatus(const Job& job,
                                                              bool with_tasks,
                                                              const TaskPage& page,
                                                              bool with_groups) {
  auto live = std::make_unique<LiveStatus>();
  live->head = JobStatusHead(job.record);
  *live->head.mutable_counts() = CountsToWire(job.plan->counts());
  const dag::Plan& plan = *job.plan;
  if (with_groups) {
    for (auto& g : BuildGroups(job.spec, [&](uint32_t t) { return plan.state(t); })) {
      *live->head.add_groups() = std::move(g);
    }
  }
  if (!with_tasks) return live;
  // Tasks that match `page`: counted all, listed from page.offset while
  // page.limit allows (RenderLiveStatus stops at the size bound).
  uint32_t matched = 0;
  // One reason per placement class, computed when first needed.
  std::vector<int32_t> reasons(plan.queues(), -1);
  // No name is made: the page's instance is found by its name (O(tasks as
  // written)), and a group's instances by their task's key, which is the
  // part of their names before '[' (a key has none).
  uint32_t first = 0, end = job.size();
  if (!page.name.empty()) {
    const std::optional<uint32_t> only = job.spec.tasks.Find(page.name);
    first = only.value_or(end);
    end = only ? *only + 1 : end;
  }
  live->tasks.reserve(page.limit ? std::min(page.limit, end - first) : end - first);
  for (uint32_t t = first; t < end; ++t) {
    const dag::TaskState state = plan.state(t);
    if (!page.MatchesState(state)) continue;
    if (!page.group.empty() && job.spec.tasks.Shared(t).base_name != page.group) continue;
    const store::TaskRecord* held = job.HeldRow(t);
    const uint32_t position = matched++;
    if (position < page.offset) continue;
    if (page.limit != 0 && position - page.offset >= page.limit) continue;
    LiveStatus::Task& task = live->tasks.emplace_back();
    task.index = t;
    task.state = state;
    task.attempts = job.attempt_base[t] + static_cast<uint32_t>(plan.attempts(t));
    task.first_attempts = job.attempt_base[t];
    if (held) {
      task.held = static_cast<int32_t>(live->held.size());
      live->held.push_back(*held);
    } else {
      task.ended = job.RowEnded(t);
    }
    if (state == dag::TaskState::kRunning && job.current[t] != 0) {
      // Sent ahead to its worker, and not started there yet (prefetch).
      auto a = attempts_.find(job.current[t]);
      task.waiting_in_worker = a != attempts_.end() && a->second.waiting;
    }
    if (state == dag::TaskState::kReady) {
      int32_t& reason = reasons[plan.queue(t)];
      if (reason < 0) {
        reason = static_cast<int32_t>(live->reasons.size());
        live->reasons.push_back(PendingReason(job.queues[plan.queue(t)]));
      }
      task.reason = reason;
    } else if (state == dag::TaskState::kWaiting && job.spec.tasks.Shared(t).dynamic) {
      task.fanout = true;
    }
  }
  live->head.set_tasks_matched(matched);
  std::vector<uint32_t> listed;
  listed.reserve(live->tasks.size());
  for (const LiveStatus::Task& task : live->tasks) listed.push_back(task.index);
  live->names = job.spec.tasks.NamesOf(listed);
  return live;
}

void Coordinator::Loop::HandleStatus(const Message& m) {
  auto req = protocol::Parse<wire::StatusRequest>(m);
  if (!req.ok()) return RefuseMalformed(m.routing_id, req.status());
  auto page = TaskPage::FromRequest(*req);
  if (!page.ok()) return ReplyError(m.routing_id, page.status().message());
  if (reader_) {
    // A job not running, or a list of jobs, is read by reader_ (reads.cc);
    // the live jobs it lists are made current when its answer is sent.
    if (req->job_id() == "latest") {
      auto latest = store_->LatestJobId();  // from an index, not the job's row
      if (!latest.ok()) return ReplyError(m.routing_id, latest.status().ToString());
      if (!*latest) return ReplyError(m.routing_id, "no job has been submitted");
      req->set_job_id(**latest);
    }
    if (auto live = jobs_.find(req->job_id()); live != jobs_.end() && req->tasks()) {
      // A running job's tasks: the loop takes what only it knows, the
      // reader renders the rest once this turn is committed
      // (live_status.h). Without its tasks, the loop answers at once.
      auto snapshot = SnapshotStatus(*live->second, req->tasks(), *page, req->groups());
      return ReadOffLoop({.routing_id = m.routing_id,
                          .kind = StoreReader::Kind::kLiveStatus,
                          .status = std::move(*req),
                          .page = std::move(*page),
                          .live = std::move(snapshot),
                          .after_turn = turn_});
    }
    const bool off_loop = req->job_id().empty() ? req->limit() || !req->metrics()
                                                : !jobs_.contains(req->job_id());
    if (off_loop) {
      return ReadOffLoop({.routing_id = m.routing_id,
                          .kind = StoreReader::Kind::kStatus,
                          .status = std::move(*req),
                          .page = std::move(*page)});
    }
  }
  // A running job's task list is tens of thousands of small messages and
  // strings: made on an arena, freed at once (with malloc and the page
  // faults of a heap that grows, they were most of a 100,000-task job's
  // STATUS).
  google::protobuf::Arena arena(StatusArena());
  auto* reply = google::protobuf::Arena::CreateMessage<wire::StatusReply>(&arena);
  if (req->metrics()) reply->set_metrics(MetricsText());
  if (auto live = jobs_.find(req->job_id()); live != jobs_.end()) {
    // A running job: its record is the loop's (its row holds its spec, up
    // to 4 MiB, which the status does not show).
    StatusOf(live->second->record, req->tasks(), *page, req->groups(), reply->add_jobs());
  } else if (!req->job_id().empty()) {
    auto found = req->job_id() == "latest" ? store_->LatestJob() : store_->GetJob(req->job_id());
    if (!found.ok()) return ReplyError(m.routing_id, found.status().ToString());
    if (!*found) {
      return ReplyError(m.routing_id, req->job_id() == "latest" ? "no job has been submitted"
                                                                : "no job " + req->job_id());
    }
    StatusOf(**found, req->tasks(), *page, req->groups(), reply->add_jobs());
  } else if (req->limit() || !req->metrics()) {
    store::Store::JobQuery query;
    query.state = req->state();
    query.name = req->name();
    query.since_ms = req->since_unix_ms();
    query.limit = req->limit() ? req->limit() : kDefaultStatusLimit;
    auto recent = store_->FindJobs(query);
    if (!recent.ok()) return ReplyError(m.routing_id, recent.status().ToString());
    size_t bytes = 0;
    for (const auto& record : *recent) {
      if (bytes >= kMaxStatusBytes) break;
      wire::JobStatus* js = reply->add_jobs();
      StatusOf(record, req->tasks(), *page, /*with_groups=*/false, js);
      bytes += js->ByteSizeLong();
    }
  }
  Reply(m.routing_id, Command::kStatusReply, *reply);
}

void Coordinator::Loop::HandleLogs(const Message& m) {
  auto req = protocol::Parse<wire::LogsRequest>(m);
  if (!req.ok()) return RefuseMalformed(m.routing_id, req.status());
  Job* job = nullptr;
  store::JobRecord record;
  store::TaskRecord row;
  std::string state;
  uint32_t t = 0;
  if (auto it = jobs_.find(req->job_id()); it != jobs_.end()) {
    job = it->second.get();
    const auto found = job->spec.Find(req->task());
    if (!found) {
      return ReplyError(m.routing_id, "job " + req->job_id() + " has no task '" +
                                          req->task() + "'");
    }
    t = *found;
    record = job->record;
    const store::TaskRecord* held = job->HeldRow(t);
    row = held ? *held : job->FirstRow(t);
    row.attempts = job->attempt_base[t] + static_cast<uint32_t>(job->plan->attempts(t));
    state = std::string(dag::TaskStateName(job->plan->state(t)));
  } else {
    // A job not running: its rows and logs are read off the loop (reads.cc).
    if (reader_) {
      return ReadOffLoop(
          {.routing_id = m.routing_id, .kind = StoreReader::Kind::kLogs, .logs = *req});
    }
    StoredLogs logs = LogsOfStoredJob(*store_, *req);
    if (!logs.error.empty()) return ReplyError(m.routing_id, logs.error);
    return Reply(m.routing_id, Command::kLogs, logs.logs, std::move(logs.frames));
  }
  if (req->attempt() > row.attempts) {
    return ReplyError(m.routing_id, "task '" + row.name + "' has no attempt " +
                                        std::to_string(req->attempt()) + " (it has made " +
                                        std::to_string(row.attempts) + ")");
  }
  const uint32_t number = req->attempt() ? req->attempt() : row.attempts;
  // Still to come: the latest attempt while it runs, or the next one of a
  // task that has not ended.
  bool done = true;
  if (job) {
    const bool running = job->current[t] != 0 && number == row.attempts;
    const bool pending = !dag::IsTerminal(job->plan->state(t)) && req->attempt() == 0;
    done = !running && !pending;
  }
  if (done && number > 0 && reader_) {
    // An ended attempt's output, up to two files of 16 MiB: read off the
    // loop too (reads.cc).
    StoreReader::Read read{.routing_id = m.routing_id,
                           .kind = StoreReader::Kind::kLogFiles};
    read.head.set_job_id(record.id);
    read.head.set_task(row.name);
    read.head.set_attempt(number);
    read.head.set_done(true);
    read.head.set_state(state);
    return ReadOffLoop(std::move(read));
  }
  SendLogs(m.routing_id, record, row.name, number, done, state, nullptr);
  if (req->follow() && !done) job->log_followers[t].insert(m.routing_id);
}

}  // namespace drover
