// Coordinator::Loop, the host of the scheduled pipelines (pipelines.h):
// the jobs their runs are, the directory loaded at Open() and again on
// SIGHUP, and the client commands PIPELINES and PIPELINE-RUN
// (docs/protocol.md, "Pipelines").
#include <algorithm>

#include "core/coordinator/loop.h"

namespace drover {
namespace {

constexpr uint32_t kDefaultNextRuns = 3;
constexpr uint32_t kMaxNextRuns = 100;

// The submitter recorded on the jobs the schedule starts (jobs.submitter_name).
constexpr const char* kScheduleSubmitter = "schedule";

}  // namespace

Status Coordinator::Loop::OpenPipelines() {
  if (options_.pipelines_dir.empty()) return Status::Ok();
  auto created = Pipelines::Create(*store_, *this);
  if (!created.ok()) return created.status();
  pipelines_ = std::move(created.value());
  const LoadedPipelines loaded =
      LoadPipelineDir(options_.pipelines_dir, options_.spec_options);
  pipelines_->Apply(loaded, clock_.WallNow(), /*startup=*/true);
  spdlog::info("coordinator: {} from {} ({} with errors, {} without a schedule)",
               pipelines_->all().size() == 1
                   ? std::string("1 pipeline")
                   : std::to_string(pipelines_->all().size()) + " pipelines",
               options_.pipelines_dir.string(), loaded.bad.size(),
               loaded.unscheduled.size());
  return Status::Ok();
}

void Coordinator::Loop::TickPipelines() {
  if (reload_pipelines_.exchange(false, std::memory_order_acq_rel)) {
    if (!pipelines_) {
      spdlog::warn(
          "coordinator: SIGHUP: no --pipelines directory to re-read; nothing changes");
    } else {
      spdlog::info("coordinator: SIGHUP: re-reading the pipelines of {}",
                   options_.pipelines_dir.string());
      const LoadedPipelines loaded =
          LoadPipelineDir(options_.pipelines_dir, options_.spec_options);
      pipelines_->Apply(loaded, clock_.WallNow(), /*startup=*/false);
      spdlog::info("coordinator: SIGHUP: done; {} loaded, {} with errors",
                   pipelines_->all().size(), loaded.bad.size());
    }
  }
  if (pipelines_) pipelines_->Tick(clock_.WallNow());
}

Result<std::string> Coordinator::Loop::StartPipelineJob(const PipelineDef& def) {
  auto job = std::make_unique<Job>();
  job->spec = def.spec;
  store::JobRecord& rec = job->record;
  rec.id = FreshJobId();
  rec.name = def.spec.name;
  rec.spec_file = def.file.string();
  rec.spec_text = def.spec_text;
  // As a client in the directory would: relative paths of the spec's
  // tasks are the directory's.
  std::error_code ec;
  rec.cwd = std::filesystem::absolute(def.file, ec).parent_path().string();
  rec.submitter_name = kScheduleSubmitter;
  rec.state = dag::JobStateName(dag::JobState::kRunning);
  rec.priority = def.spec.priority;
  rec.created_ms = WallMillis(clock_);
  (void)InitJobState(*job, {}, options_.jitter_seed ? options_.jitter_seed : rng_());
  const std::string id = rec.id;
  if (!Admit(std::move(job), /*replace=*/false, /*rid=*/"", /*watch=*/{}, 0)) {
    return Unavailable("job " + id + " could not be stored");
  }
  return id;
}

bool Coordinator::Loop::PipelineJobRunning(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  return it != jobs_.end() && JobRunning(*it->second);
}

void Coordinator::Loop::CancelPipelineJob(const std::string& job_id) {
  if (auto it = jobs_.find(job_id); it != jobs_.end()) CancelWholeJob(*it->second);
}

void Coordinator::Loop::HandlePipelines(const Message& m) {
  auto req = protocol::Parse<wire::PipelinesRequest>(m);
  if (!req.ok()) return RefuseMalformed(m.routing_id, req.status());
  const uint32_t n =
      req->next_runs() == 0 ? kDefaultNextRuns : std::min(req->next_runs(), kMaxNextRuns);
  wire::PipelinesReply reply;
  if (!pipelines_) return Reply(m.routing_id, Command::kPipelinesReply, reply);
  reply.set_dir(options_.pipelines_dir.string());
  const WallTime now = clock_.WallNow();
  auto run_info = [&](const store::PipelineRunRecord& r, wire::PipelineRunInfo* out) {
    out->set_job_id(r.job_id);
    out->set_due_unix_ms(r.due_ms);
    out->set_started_unix_ms(r.started_ms);
    out->set_trigger(r.trigger);
    if (r.job_id.empty()) {
      out->set_state("queued");
    } else if (auto it = jobs_.find(r.job_id); it != jobs_.end()) {
      out->set_state(it->second->record.state);
    } else {
      auto state = store_->JobStateOf(r.job_id);  // not its spec
      out->set_state(state.ok() && *state ? **state : "unknown");
    }
  };
  for (const auto& [name, p] : pipelines_->all()) {
    wire::PipelineInfo& info = *reply.add_pipelines();
    info.set_name(name);
    info.set_file(p.def.file.string());
    info.set_schedule(p.def.schedule.text());
    info.set_timezone(p.def.timezone);
    info.set_concurrency(std::string(sched::ConcurrencyName(p.def.concurrency)));
    info.set_catchup(p.def.catchup);
    for (WallTime t : Pipelines::NextTimes(p, now, static_cast<int>(n))) {
      info.add_next_unix_ms(ToUnixMillis(t));
    }
    if (p.last_started) run_info(*p.last_started, info.mutable_last_run());
    if (p.queued) run_info(*p.queued, info.mutable_queued());
    info.set_skipped(p.skipped);
    info.set_error(p.error);
  }
  Reply(m.routing_id, Command::kPipelinesReply, reply);
}

void Coordinator::Loop::HandlePipelineRun(const Message& m) {
  auto req = protocol::Parse<wire::PipelineRun>(m);
  if (!req.ok()) return RefuseMalformed(m.routing_id, req.status());
  if (!pipelines_) {
    return ReplyError(
        m.routing_id,
        "this coordinator runs no pipelines (start it with --pipelines DIR)");
  }
  auto run = pipelines_->RunNow(req->name(), clock_.WallNow());
  if (!run.ok()) return ReplyError(m.routing_id, run.status().message());
  if (run->queued) {
    wire::Ok ok;
    ok.set_message(run->message);
    return Reply(m.routing_id, Command::kOk, ok);
  }
  wire::Submitted reply;
  reply.set_job_id(run->job_id);
  if (auto it = jobs_.find(run->job_id); it != jobs_.end()) {
    reply.set_tasks(it->second->size());
  }
  Reply(m.routing_id, Command::kSubmitted, reply);
}

}  // namespace drover
