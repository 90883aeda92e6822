// `drover run FILE`: the coordinator and a worker in this process, talking
// over inproc:// on exactly the code `drover coordinator` and `drover
// worker` run over TCP, and this thread as the client that submits the job
// and watches it.
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "backends/backend.h"
#include "backends/fork/zygote.h"
#include "backends/process/guardian.h"
#include "core/artifacts/local_files.h"
#include "core/coordinator/coordinator.h"
#include "core/protocol/codec.h"
#include "core/spec/job_spec.h"
#include "core/store/store.h"
#include "tools/cli/client.h"
#include "tools/cli/client_commands.h"
#include "tools/cli/commands.h"
#include "tools/cli/input_hashes.h"
#include "tools/cli/job_watcher.h"
#include "tools/cli/render.h"
#include "tools/http/server.h"
#include "worker/worker.h"

namespace drover::cli {
namespace {

using protocol::Command;

std::atomic<int> g_interrupts{0};

extern "C" void OnInterrupt(int) { g_interrupts.fetch_add(1); }

void InstallInterruptHandler() {
  struct sigaction sa = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a poll of this thread wakes up
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// As `drover validate` and `drover submit` read a spec: capped in size,
// never a directory, never blocking on a FIFO without a writer.
Result<std::string> ReadText(const std::string& path) { return spec::ReadSpecFile(path); }

// This thread's part of `drover run`: the client of the embedded
// coordinator at `endpoint`, as `drover submit --wait` is of a remote one
// (the same Client and JobWatcher). Sets *job_id once the job is accepted.
// Returns the job's end; kInvalidArgument when the job was refused (the
// errors printed), kCancelled at a second Ctrl-C.
Result<wire::JobEvent> SubmitAndWatch(zmq::context_t& context,
                                      const std::string& endpoint, Duration heartbeat,
                                      const RunArgs& args, const wire::Submit& cache_inputs,
                                      std::string text, std::string* job_id) {
  ClientOptions options;
  options.endpoint = endpoint;
  // The coordinator is in this process: no network to wait for, only the
  // time it takes to load and store a large job.
  options.timeout = std::chrono::minutes(10);
  options.heartbeat = heartbeat;
  Client client(context, std::move(options));
  if (Status s = client.Connect(); !s.ok()) return s;
  auto submit = MakeSubmit(args.file, std::move(text), args.resume, /*watch=*/true);
  if (!submit.ok()) {
    std::fprintf(stderr, "%s\n", submit.status().message().c_str());
    return InvalidArgument("refused");
  }
  submit->MergeFrom(cache_inputs);
  if (submit->ByteSizeLong() > protocol::Limits{}.max_body) {
    std::fprintf(stderr, "%s: the spec with the hashes of its inputs is too large to submit "
                         "(over 4 MiB)\n", args.file.c_str());
    return InvalidArgument("refused");
  }
  auto answer =
      client.Call(protocol::Make(Command::kSubmit, *submit), {Command::kSubmitted});
  if (!answer.ok()) {
    std::fprintf(stderr, "drover: %s\n", answer.status().message().c_str());
    return InvalidArgument("refused");
  }
  auto accepted = TakeSubmitted(*answer, /*print_id=*/false);
  if (!accepted) return InvalidArgument("refused");
  *job_id = *accepted;

  WatchOptions watch;
  watch.live = args.progress && ::isatty(STDOUT_FILENO);
  watch.lines = watch.live ? TaskLines::kProblems : TaskLines::kEnded;
  watch.interrupts = &g_interrupts;
  watch.error_prefix = "drover: ";
  return JobWatcher(client, *job_id, std::move(watch)).Run();
}

}  // namespace

int RunCommand(const RunArgs& args, const BackendRegistry& registry) {
  // The backends a task may name, for this validation and the coordinator.
  spec::LoadOptions spec_options;
  spec_options.kinds = &registry.kinds();
  // Validate here first: a bad spec is reported before anything starts.
  // The text is read once (a pipe cannot be read twice): the spec loaded
  // from it is handed to the coordinator with it (Coordinator::HandOver).
  auto text = ReadText(args.file);
  if (!text.ok()) {
    std::fprintf(stderr, "%s\n", text.status().message().c_str());
    return kExitUsage;
  }
  spec::LoadResult loaded = spec::LoadString(*text, args.file, spec_options);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors)
      std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return kExitUsage;
  }
  if (loaded.spec->schedule) {
    // A schedule is the coordinator's to keep (--pipelines); here it is
    // one run, now (docs/spec.md, "Schedules").
    std::fprintf(stderr,
                 "drover: %s has a schedule (%s); drover run runs it once, now (drover "
                 "coordinator --pipelines DIR runs it on its schedule)\n",
                 args.file.c_str(), loaded.spec->schedule->schedule.c_str());
  }
  const int slots = args.jobs > 0 ? args.jobs
                                  : std::max(1u, std::thread::hardware_concurrency());

  // What an earlier `drover run` on this state directory left running
  // when it was killed together with its guardian dies first.
  const std::filesystem::path spool_dir = std::filesystem::path(args.state_dir) / "spool";
  // Another `drover run` on this state directory is refused before its
  // tasks could be killed (the coordinator's own lock comes later).
  auto spool = ClaimSpool(spool_dir);
  if (!spool.ok()) {
    std::fprintf(stderr, "drover: %s; wait for it or pass another --state-dir\n",
                 spool.status().message().c_str());
    return kExitUsage;
  }
  if (!spool->unlocked.empty()) {
    // The state directory's own checks (the coordinator's lock, the store)
    // say what is wrong with it, if anything.
    spdlog::warn("{}; a second drover run on {} would not be refused", spool->unlocked,
                 args.state_dir);
  }
  if (spool->killed > 0) {
    spdlog::warn("killed {} left running by an earlier drover run",
                 Plural(static_cast<uint64_t>(spool->killed), "process", "processes"));
  }
  const std::string marker = SetGuardianMarker();
  // `cow` pools fork from a zygote, which must be forked now, while this
  // process has a single thread (no ZeroMQ context, no backend yet).
  std::shared_ptr<Zygote> zygote;
  for (const auto& pool : loaded.spec->pools) {
    if (pool.mode != "cow" || zygote) continue;
    ZygoteOptions zopt;
    for (const auto& p : loaded.spec->plugins) zopt.plugins.emplace_back(p);
    auto started = StartZygote(std::move(zopt));
    if (started.ok()) {
      zygote = std::move(started.value());
    } else {
      // The job runs; its cow tasks fail with this reason.
      spdlog::error("cannot start the zygote for cow pools: {}", started.status().message());
    }
  }

  // The guardian kills the embedded worker's tasks if this process is
  // killed (guardian.h); forked after the zygote, before any thread.
  std::shared_ptr<Guardian> guardian;
  {
    std::error_code ec;
    std::filesystem::create_directories(spool_dir, ec);
    auto started = Guardian::Start(GuardianOptions{marker, spool_dir / kGuardianSpoolFile});
    if (started.ok()) {
      guardian = std::move(started.value());
    } else {
      spdlog::error("cannot start the guardian; tasks will outlive a killed drover run: {}",
                    started.status().message());
    }
  }

  RealClock clock;
  zmq::context_t context;
  const std::string endpoint = "inproc://drover-run";

  CoordinatorOptions copt;
  copt.endpoints = {endpoint};
  copt.state_dir = args.state_dir;
  copt.spec_options = spec_options;
  // The embedded worker died with an earlier `drover run`: its jobs are
  // interrupted, and --resume re-runs what did not finish.
  copt.recover_jobs = false;
  // One process, one disk: artifacts are linked between the embedded
  // worker and the store, not copied through it in chunks.
  auto local_artifacts = std::make_shared<artifacts::LocalFiles>(
      std::filesystem::path(args.state_dir) / "artifacts");
  copt.local_artifacts = local_artifacts;
  Coordinator coordinator(context, copt, clock);
  if (Status s = coordinator.Open(); !s.ok()) {
    std::fprintf(stderr, "drover: %s\n", s.message().c_str());
    return kExitFailed;
  }

  // The embedded worker must be able to run every task, or the job would
  // wait for a worker that never comes.
  // Per task as written (a matrix's instances share all of this), named
  // by its first instance.
  std::vector<std::pair<const spec::TaskSpec*, std::string>> shared;
  loaded.spec->tasks.ForEachShared([&](const spec::TaskSpec& ts, spec::TaskList::Span span) {
    shared.emplace_back(&ts, loaded.spec->tasks.Name(span.first));
  });
  for (const auto& [shared_fields, name] : shared) {
    const spec::TaskSpec& task = *shared_fields;
    if (!registry.Has(task.backend)) {
      std::fprintf(stderr, "%s: task '%s' uses the '%s' backend, which this drover does "
                   "not have\n", args.file.c_str(), name.c_str(), task.backend.c_str());
      return kExitUsage;
    }
    // The embedded worker has no labels and `slots` slots per backend: a
    // task that asks for more would stay pending for ever.
    const std::string at = args.file + ":" + std::to_string(task.where.line) + ":" +
                           std::to_string(task.where.column);
    if (!task.on.empty()) {
      std::string labels;
      for (const auto& [k, v] : task.on) labels += (labels.empty() ? "" : ",") + k + "=" + v;
      std::fprintf(stderr, "%s: task '%s' asks for a worker with labels %s (on:), but drover run's "
                   "embedded worker has no labels; run it with drover submit on a drover worker "
                   "--label %s\n", at.c_str(), name.c_str(), labels.c_str(), labels.c_str());
      return kExitUsage;
    }
    // Nor does it have services of its own (a worker configuration's).
    if (const auto own = loaded.spec->WorkerServices(task); !own.empty()) {
      std::fprintf(stderr, "%s: task '%s' needs the workers' own service '%s' (from: worker), "
                   "but drover run's embedded worker has none; declare the service in the job "
                   "or run it with drover submit on a drover worker whose --config declares "
                   "it\n", at.c_str(), name.c_str(), own.front().c_str());
      return kExitUsage;
    }
    if (task.slots > static_cast<uint32_t>(slots)) {
      std::fprintf(stderr, "%s: task '%s' needs %u %s slots (slots:), but drover run -j %d gives "
                   "the embedded worker %d\n", at.c_str(), name.c_str(), task.slots,
                   task.backend.c_str(), slots, slots);
      return kExitUsage;
    }
  }
  // The `inputs` of cached tasks are hashed now, before the spec goes.
  wire::Submit cache_inputs;
  {
    std::error_code ec;
    if (Status s = AddCacheInputs(*loaded.spec, std::filesystem::current_path(ec),
                                  args.no_cache, &cache_inputs);
        !s.ok()) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      return kExitUsage;
    }
  }
  // The coordinator takes this spec for the SUBMIT of this text, instead of
  // loading the text again: a 100,000-value matrix is 0.1 s of yaml-cpp
  // that the job would wait for twice. One copy in memory.
  coordinator.HandOver(args.file, *text, std::move(*loaded.spec));
  loaded.spec.reset();
  auto http = StartHttp(context, args.http, endpoint);
  if (!http.ok()) {
    std::fprintf(stderr, "drover: %s\n", http.status().message().c_str());
    return http.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
  }
  if (*http) std::fprintf(stderr, "drover: dashboard and API at %s\n", (*http)->url().c_str());

  WorkerOptions wopt;
  wopt.coordinator = endpoint;
  wopt.name = "local";
  // The worker stops only once the job has ended, or at a second Ctrl-C,
  // which means "now": what still runs is killed at once.
  wopt.shutdown_grace = Duration(0);
  wopt.zygote = zygote;
  wopt.guardian = guardian;
  for (const auto& name : registry.Names()) wopt.slots[name] = slots;
  // One worker, so a task held ready cannot wait on it while another
  // worker idles. By default, as `drover worker`: 4 tasks ready behind each
  // slot, of which the coordinator sends more than one only while the
  // tasks are short (core/coordinator/prefetch_grant.h).
  wopt.prefetch = args.prefetch < 0 ? WorkerOptions::kPrefetchDefault : args.prefetch;
  wopt.spool_dir = spool_dir;
  wopt.local_artifacts = local_artifacts;
  Worker worker(context, wopt, registry, clock);
  if (Status s = worker.Start(); !s.ok()) {
    std::fprintf(stderr, "drover: %s\n", s.message().c_str());
    return kExitFailed;
  }

  InstallInterruptHandler();
  // Named, so that top -H, perf and gdb tell the loops apart.
  std::thread coordinator_thread([&] {
    pthread_setname_np(pthread_self(), "drover-coord");
    if (Status s = coordinator.Run(); !s.ok())
      spdlog::error("coordinator: {}", s.ToString());
  });
  std::thread worker_thread([&] {
    pthread_setname_np(pthread_self(), "drover-worker");
    if (Status s = worker.Run(); !s.ok()) spdlog::error("worker: {}", s.ToString());
  });

  std::string job_id;
  const Result<wire::JobEvent> end = SubmitAndWatch(
      context, endpoint, copt.heartbeat_interval, args, cache_inputs, std::move(*text),
      &job_id);

  if (*http) (*http)->Stop();
  worker.Stop();
  worker_thread.join();
  coordinator.Stop();
  coordinator_thread.join();

  if (!end.ok()) {
    switch (end.status().code()) {
      case StatusCode::kInvalidArgument:
        return kExitUsage;  // refused: the errors are printed
      case StatusCode::kCancelled:
        std::fprintf(stderr, "drover: interrupted; job %s left unfinished\n",
                     job_id.c_str());
        return 130;
      default:
        std::fprintf(stderr, "drover: %s\n", end.status().message().c_str());
        return kExitFailed;
    }
  }
  auto store = store::Store::Open(args.state_dir);
  if (store.ok()) {
    // The counts and the tasks that did not succeed, not every row: the
    // summary of a million-task job reads a screenful.
    auto job = (*store)->GetJob(job_id);
    if (job.ok() && *job && (*job)->tasks <= kBriefTaskRows) {
      if (auto tasks = (*store)->Tasks(job_id); tasks.ok()) {
        std::fputs("\n", stdout);
        PrintJobTable(stdout, **job, *tasks, /*brief=*/true, {}, store->get());
      }
    } else if (job.ok() && *job) {
      // Every task succeeded, by the end event's counts (the coordinator's
      // as it finished the job): nothing to list, and the counts are the
      // event's, where the store's take a pass over the job's attempts
      // (about 30 ms a 100,000 tasks, on the run's clock).
      const wire::Counts& c = end->counts();
      if (c.total() == (*job)->tasks && c.succeeded() == c.total()) {
        std::vector<std::pair<std::string, uint64_t>> counts;
        if (c.cached() > 0) counts.emplace_back("cached", c.cached());
        if (c.succeeded() > c.cached())
          counts.emplace_back("succeeded", c.succeeded() - c.cached());
        std::fputs("\n", stdout);
        PrintJobTable(stdout, **job, {}, /*brief=*/true, {}, store->get(), &counts);
      } else {
        auto counts = (*store)->TaskStateCounts(job_id);
        auto tasks = (*store)->UnsuccessfulTasks(job_id, kBriefTaskRows);
        if (counts.ok() && tasks.ok()) {
          std::fputs("\n", stdout);
          PrintJobTable(stdout, **job, *tasks, /*brief=*/true, {}, store->get(),
                        &*counts);
        }
      }
    }
  }
  return ExitForJobState(end->state());
}

}  // namespace drover::cli
