#include "core/coordinator/pipelines.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "core/base/files.h"

namespace drover {
namespace {

namespace fs = std::filesystem;

WallTime FromMillis(int64_t ms) {
  return WallTime(
      std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds(ms)));
}

// "2026-03-29 03:00 CEST": for the log, in the pipeline's own zone.
std::string Local(WallTime t, const cctz::time_zone& zone) {
  return cctz::format("%Y-%m-%d %H:%M:%S %Z",
                      std::chrono::time_point_cast<std::chrono::seconds>(t), zone);
}

bool IsSpecFile(const fs::directory_entry& e) {
  std::error_code ec;
  if (!e.is_regular_file(ec)) return false;
  const std::string ext = e.path().extension().string();
  return ext == ".yaml" || ext == ".yml";
}

}  // namespace

std::string_view RunTriggerName(RunTrigger t) {
  switch (t) {
    case RunTrigger::kSchedule:
      return "schedule";
    case RunTrigger::kCatchup:
      return "catchup";
    case RunTrigger::kManual:
      return "manual";
  }
  return "schedule";
}

LoadedPipelines LoadPipelineDir(const fs::path& dir, const spec::LoadOptions& options) {
  LoadedPipelines out;
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (IsSpecFile(*it)) files.push_back(it->path());
  }
  if (ec) {
    out.bad.push_back(
        {dir, {dir.string() + ": cannot read the directory: " + ec.message()}});
    return out;
  }
  std::sort(files.begin(), files.end());
  std::map<std::string, fs::path> names;
  for (const fs::path& file : files) {
    std::string text;
    // Capped as every spec is: a huge file in the directory costs a
    // refusal, not the coordinator's memory.
    auto read = spec::ReadSpecFile(file.string());
    if (!read.ok()) {
      out.bad.push_back({file, {read.status().message()}});
      continue;
    }
    text = std::move(*read);
    spec::LoadResult loaded = spec::LoadString(text, file.string(), options);
    if (!loaded.ok()) {
      PipelineFileError bad{file, {}};
      for (const auto& e : loaded.errors) bad.errors.push_back(e.ToString());
      out.bad.push_back(std::move(bad));
      continue;
    }
    spec::JobSpec& spec = *loaded.spec;
    if (!spec.schedule) {
      out.unscheduled.push_back(file);
      continue;
    }
    if (auto [it, fresh] = names.emplace(spec.name, file); !fresh) {
      out.bad.push_back(
          {file,
           {file.string() + ":" + std::to_string(spec.schedule->line) + ":" +
            std::to_string(spec.schedule->column) + ": pipeline '" + spec.name +
            "' is already defined by " + it->second.string() + "; not loaded"}});
      continue;
    }
    // The loader checked both; a failure here would be a loader bug.
    auto schedule = sched::Schedule::Parse(spec.schedule->schedule);
    auto zone = sched::LoadTimeZone(spec.schedule->timezone);
    auto concurrency = sched::ParseConcurrency(spec.schedule->concurrency);
    if (!std::holds_alternative<sched::Schedule>(schedule) || !zone.ok() ||
        !concurrency) {
      out.bad.push_back({file, {file.string() + ": the schedule does not load"}});
      continue;
    }
    out.defs.push_back(PipelineDef{spec.name, file, std::move(text), spec,
                                   std::get<sched::Schedule>(std::move(schedule)),
                                   spec.schedule->timezone, *zone, *concurrency,
                                   spec.schedule->catchup});
  }
  return out;
}

Result<std::unique_ptr<Pipelines>> Pipelines::Create(store::Store& store,
                                                     PipelineHost& host) {
  auto max_id = store.MaxPipelineRunId();
  if (!max_id.ok()) return max_id.status();
  return std::unique_ptr<Pipelines>(new Pipelines(store, host, *max_id + 1));
}

void Pipelines::Add(const PipelineDef& def, WallTime now, bool startup) {
  Pipeline p{def};
  p.next_due = def.schedule.Next(now, def.zone);
  auto history = store_.PipelineHistoryOf(def.name);
  if (!history.ok()) {
    spdlog::error("coordinator: pipeline {}: its history: {}", def.name,
                  history.status().ToString());
  } else {
    p.last_started = history->last_started;
    p.queued = history->queued;
    p.skipped = history->skipped;
    if (startup && history->last_due_ms > 0) {
      const WallTime last = FromMillis(history->last_due_ms);
      const auto missed = def.schedule.Next(last, def.zone);
      if (missed && *missed <= now) {
        p.catchup_due = sched::MissedRun(def.schedule, def.zone, last, now, def.catchup);
        if (p.catchup_due) {
          spdlog::info(
              "coordinator: pipeline {}: runs were missed since {}; catching up the "
              "last one, due {}",
              def.name, Local(last, def.zone), Local(*p.catchup_due, def.zone));
        } else {
          spdlog::info(
              "coordinator: pipeline {}: runs were missed since {}; not replayed "
              "(catchup: false)",
              def.name, Local(last, def.zone));
        }
      }
    }
  }
  spdlog::info("coordinator: pipeline {} ({}): '{}' in {}, concurrency {}, next run {}",
               def.name, def.file.string(), def.schedule.text(), def.timezone,
               sched::ConcurrencyName(def.concurrency),
               p.next_due ? Local(*p.next_due, def.zone) : std::string("never"));
  pipelines_.insert_or_assign(def.name, std::move(p));
}

void Pipelines::Apply(const LoadedPipelines& loaded, WallTime now, bool startup) {
  std::set<std::string> seen;
  for (const PipelineDef& def : loaded.defs) {
    seen.insert(def.name);
    auto it = pipelines_.find(def.name);
    if (it == pipelines_.end()) {
      Add(def, now, startup);
      continue;
    }
    Pipeline& p = it->second;
    p.error.clear();
    if (p.def.spec_text == def.spec_text && p.def.file == def.file) continue;
    const bool when_changed =
        p.def.schedule.text() != def.schedule.text() || p.def.timezone != def.timezone;
    p.def = def;
    if (when_changed) p.next_due = def.schedule.Next(now, def.zone);
    spdlog::info(
        "coordinator: pipeline {} ({}) changed: '{}' in {}, concurrency {}, next run {}",
        def.name, def.file.string(), def.schedule.text(), def.timezone,
        sched::ConcurrencyName(def.concurrency),
        p.next_due ? Local(*p.next_due, def.zone) : std::string("never"));
  }
  std::map<fs::path, const PipelineFileError*> bad;
  for (const auto& b : loaded.bad) {
    bad.emplace(b.file, &b);
    for (const auto& e : b.errors) spdlog::error("coordinator: pipelines: {}", e);
  }
  std::set<fs::path> kept_files;
  for (auto it = pipelines_.begin(); it != pipelines_.end();) {
    Pipeline& p = it->second;
    if (seen.count(it->first)) {
      ++it;
      continue;
    }
    if (auto b = bad.find(p.def.file); b != bad.end()) {
      p.error.clear();
      for (const auto& e : b->second->errors)
        p.error += (p.error.empty() ? "" : "\n") + e;
      kept_files.insert(p.def.file);
      spdlog::warn(
          "coordinator: pipeline {}: {} has errors; keeping the version loaded before",
          p.def.name, p.def.file.string());
      ++it;
      continue;
    }
    spdlog::info(
        "coordinator: pipeline {} removed ({} no longer defines it){}", p.def.name,
        p.def.file.string(),
        Running(p) ? "; its running job " + p.last_started->job_id + " goes on" : "");
    it = pipelines_.erase(it);
  }
  for (const auto& b : loaded.bad) {
    if (!kept_files.count(b.file)) {
      spdlog::error("coordinator: pipelines: {} is not loaded", b.file.string());
    }
  }
}

bool Pipelines::Running(const Pipeline& p) const {
  return p.last_started && host_.PipelineJobRunning(p.last_started->job_id);
}

std::optional<WallTime> Pipelines::NextWake() const {
  std::optional<WallTime> next;
  for (const auto& [name, p] : pipelines_) {
    for (const auto& t : {p.catchup_due, p.next_due}) {
      if (t && (!next || *t < *next)) next = t;
    }
  }
  return next;
}

void Pipelines::Tick(WallTime now) {
  for (auto& [name, p] : pipelines_) {
    if (p.queued && !Running(p)) StartQueued(p, now);
    if (p.catchup_due) {
      const WallTime due = *p.catchup_due;
      p.catchup_due.reset();
      Fire(p, due, RunTrigger::kCatchup, now);
    }
    if (p.next_due && *p.next_due <= now) {
      const WallTime due = *p.next_due;
      p.next_due = p.def.schedule.Next(now, p.def.zone);
      Fire(p, due, RunTrigger::kSchedule, now);
    }
  }
}

store::PipelineRunRecord Pipelines::NewRun(const Pipeline& p, WallTime due,
                                           RunTrigger trigger, const char* outcome,
                                           std::string detail) {
  store::PipelineRunRecord r;
  r.id = next_id_++;
  r.pipeline = p.def.name;
  r.due_ms = ToUnixMillis(due);
  r.trigger = std::string(RunTriggerName(trigger));
  r.outcome = outcome;
  r.detail = std::move(detail);
  return r;
}

void Pipelines::Record(const store::PipelineRunRecord& run) {
  if (Status s = store_.InsertPipelineRun(run); !s.ok()) {
    spdlog::error("coordinator: pipeline {}: cannot record its run: {}", run.pipeline,
                  s.ToString());
  }
}

bool Pipelines::Start(Pipeline& p, WallTime due, RunTrigger trigger, WallTime now,
                      std::string* why) {
  auto job = host_.StartPipelineJob(p.def);
  if (!job.ok()) {
    *why = job.status().message();
    spdlog::error("coordinator: pipeline {}: the run due {} did not start: {}",
                  p.def.name, Local(due, p.def.zone), *why);
    Record(NewRun(p, due, trigger, "error", *why));
    return false;
  }
  store::PipelineRunRecord run = NewRun(p, due, trigger, "started", "");
  run.job_id = *job;
  run.started_ms = ToUnixMillis(now);
  Record(run);
  spdlog::info("coordinator: pipeline {}: job {} started ({} run, due {})", p.def.name,
               *job, run.trigger, Local(due, p.def.zone));
  p.last_started = std::move(run);
  return true;
}

void Pipelines::StartQueued(Pipeline& p, WallTime now) {
  store::PipelineRunRecord run = std::move(*p.queued);
  p.queued.reset();
  auto job = host_.StartPipelineJob(p.def);
  if (!job.ok()) {
    spdlog::error("coordinator: pipeline {}: the queued run did not start: {}",
                  p.def.name, job.status().message());
    return;
  }
  if (Status s = store_.StartQueuedPipelineRun(run.id, *job, ToUnixMillis(now));
      !s.ok()) {
    spdlog::error("coordinator: pipeline {}: cannot record its run: {}", p.def.name,
                  s.ToString());
  }
  spdlog::info("coordinator: pipeline {}: job {} started (the queued run due {})",
               p.def.name, *job, Local(FromMillis(run.due_ms), p.def.zone));
  run.outcome = "started";
  run.job_id = *job;
  run.started_ms = ToUnixMillis(now);
  run.detail.clear();
  p.last_started = std::move(run);
}

void Pipelines::Fire(Pipeline& p, WallTime due, RunTrigger trigger, WallTime now) {
  const bool running = Running(p);
  const std::string previous = running ? p.last_started->job_id : "";
  std::string why;
  switch (sched::OnDue(p.def.concurrency, running, p.queued.has_value())) {
    case sched::Decision::kStart:
      Start(p, due, trigger, now, &why);
      return;
    case sched::Decision::kCancelAndStart:
      spdlog::info(
          "coordinator: pipeline {}: cancelling job {} for the run due {} "
          "(concurrency: replace)",
          p.def.name, previous, Local(due, p.def.zone));
      host_.CancelPipelineJob(previous);
      Start(p, due, trigger, now, &why);
      return;
    case sched::Decision::kQueue: {
      store::PipelineRunRecord run =
          NewRun(p, due, trigger, "queued", "waits for job " + previous);
      Record(run);
      spdlog::info(
          "coordinator: pipeline {}: the run due {} waits for job {} (concurrency: "
          "queue)",
          p.def.name, Local(due, p.def.zone), previous);
      p.queued = std::move(run);
      return;
    }
    case sched::Decision::kSkip:
    case sched::Decision::kAlreadyQueued: {
      const bool folded = p.queued.has_value();
      std::string detail = folded ? "a run already waits for job " + previous
                                  : "job " + previous + " was still running";
      Record(NewRun(p, due, trigger, "skipped", detail));
      ++p.skipped;
      spdlog::info("coordinator: pipeline {}: the run due {} is skipped: {}", p.def.name,
                   Local(due, p.def.zone), detail);
      return;
    }
  }
}

Result<Pipelines::RunNowResult> Pipelines::RunNow(const std::string& name, WallTime now) {
  auto it = pipelines_.find(name);
  if (it == pipelines_.end()) {
    return NotFound("no pipeline '" + name + "' (drover pipelines lists them)");
  }
  Pipeline& p = it->second;
  const bool running = Running(p);
  const std::string previous = running ? p.last_started->job_id : "";
  RunNowResult result;
  std::string why;
  switch (sched::OnDue(p.def.concurrency, running, p.queued.has_value())) {
    case sched::Decision::kSkip:
      return FailedPrecondition("pipeline " + name + " is still running job " + previous +
                                " (concurrency: skip); not started");
    case sched::Decision::kAlreadyQueued:
      return FailedPrecondition("a run of pipeline " + name + " already waits for job " +
                                previous + " to end (concurrency: queue); not started");
    case sched::Decision::kQueue: {
      store::PipelineRunRecord run =
          NewRun(p, now, RunTrigger::kManual, "queued", "waits for job " + previous);
      Record(run);
      p.queued = std::move(run);
      result.queued = true;
      result.message = "pipeline " + name + ": the run waits for job " + previous +
                       " to end (concurrency: queue)";
      spdlog::info("coordinator: {}", result.message);
      return result;
    }
    case sched::Decision::kCancelAndStart:
      spdlog::info(
          "coordinator: pipeline {}: cancelling job {} for a manual run "
          "(concurrency: replace)",
          name, previous);
      host_.CancelPipelineJob(previous);
      result.message = "cancelled job " + previous + " (concurrency: replace); ";
      [[fallthrough]];
    case sched::Decision::kStart:
      if (!Start(p, now, RunTrigger::kManual, now, &why)) return Unavailable(why);
      result.job_id = p.last_started->job_id;
      result.message += "started job " + result.job_id;
      return result;
  }
  return Internal("unreachable");
}

std::vector<WallTime> Pipelines::NextTimes(const Pipeline& p, WallTime after, int n) {
  std::vector<WallTime> out;
  std::optional<WallTime> t = p.next_due;
  // next_due may be behind `after` within a turn; the list is from `after`.
  if (t && *t <= after) t = p.def.schedule.Next(after, p.def.zone);
  while (t && static_cast<int>(out.size()) < n) {
    out.push_back(*t);
    t = p.def.schedule.Next(*t, p.def.zone);
  }
  return out;
}

}  // namespace drover
