// `drover run FILE`: the coordinator and a worker in this process, talking
// over inproc:// on exactly the code `drover coordinator` and `drover
// worker` run over TCP, and this thread as the client that submits the job
// and watches it.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "backends/backend.h"
#include "backends/fork/zygote.h"
#include "backends/kinds.h"
#include "core/coordinator/coordinator.h"
#include "core/protocol/codec.h"
#include "core/spec/job_spec.h"
#include "core/store/store.h"
#include "tools/cli/commands.h"
#include "tools/cli/render.h"
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
  sa.sa_flags = 0;  // no SA_RESTART: the poll below wakes up
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Shows the job's progress: a live line on a terminal, else one line per
// task that finished, failed or will be retried.
class Progress {
 public:
  explicit Progress(bool live) : live_(live), start_(std::chrono::steady_clock::now()) {}

  void OnTask(const wire::TaskEvent& ev) {
    counts_ = ev.counts();
    const std::string& s = ev.state();
    std::string line;
    if (s == "succeeded") {
      if (!live_) line = Format("ok", ev.task(), Micros(static_cast<int64_t>(ev.wall_us())));
    } else if (s == "retry-wait") {
      line = Format("retry", ev.task(),
                    ev.detail() + " (attempt " + std::to_string(ev.attempt()) + ")");
    } else if (s == "failed" || s == "cancelled") {
      line = Format(s == "failed" ? "FAILED" : "cancel", ev.task(),
                    ev.detail() + " (attempt " + std::to_string(ev.attempt()) + ")");
    } else if (s == "blocked" || s == "skipped") {
      if (!live_) line = Format(s, ev.task(), "");
    }
    if (!line.empty()) {
      if (live_) std::fputs("\r\033[K", stdout);
      std::fputs(line.c_str(), stdout);
      if (!live_) std::fflush(stdout);
    }
    if (live_) Draw(false);
  }

  void Draw(bool final) {
    if (!live_ || counts_.total() == 0) return;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const uint32_t done = counts_.succeeded() + counts_.failed() + counts_.other();
    std::printf("\r\033[K[%u/%u] %u ok, %u running, %u failed, %u pending  %.1f tasks/s",
                done, counts_.total(), counts_.succeeded(), counts_.running(),
                counts_.failed() + counts_.other(), counts_.pending(),
                secs > 0 ? done / secs : 0.0);
    if (final) std::fputs("\n", stdout);
    std::fflush(stdout);
  }

 private:
  static std::string Format(const std::string& tag, const std::string& task,
                            const std::string& detail) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%-7s ", tag.c_str());
    return std::string(buf) + task + (detail.empty() ? "" : "  " + detail) + "\n";
  }

  bool live_;
  std::chrono::steady_clock::time_point start_;
  wire::Counts counts_;
};

Result<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot read the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Watches the job as a client of the embedded coordinator. Returns the
// job's final state, or "" when the job was never accepted.
std::string Watch(zmq::socket_t& client, const RunArgs& args, Progress& progress,
                  std::string& job_id) {
  bool cancel_sent = false;
  while (true) {
    if (g_interrupts.load() >= 2) return "interrupted";
    if (g_interrupts.load() == 1 && !cancel_sent && !job_id.empty()) {
      std::fprintf(stderr, "\ndrover: cancelling job %s (Ctrl-C again to quit at once)\n",
                   job_id.c_str());
      wire::CancelJob c;
      c.set_job_id(job_id);
      (void)protocol::Send(client, protocol::Make(Command::kCancelJob, c));
      cancel_sent = true;
    }
    zmq::pollitem_t item{client.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(args.progress ? 200 : 1000));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    progress.Draw(false);
    while (auto received = protocol::Receive(client, /*router=*/false)) {
      if (!received->ok()) continue;
      const protocol::Message& m = received->value();
      switch (m.command) {
        case Command::kSubmitted: {
          auto s = protocol::Parse<wire::Submitted>(m);
          if (!s.ok()) return "";
          if (s->errors_size() > 0) {
            for (const auto& e : s->errors()) std::fprintf(stderr, "%s\n", e.c_str());
            return "";
          }
          job_id = s->job_id();
          std::fprintf(stderr, "drover: job %s: %u tasks", job_id.c_str(), s->tasks());
          if (s->carried_over()) {
            std::fprintf(stderr, " (%u succeeded earlier, not re-run)", s->carried_over());
          }
          std::fprintf(stderr, "\n");
          break;
        }
        case Command::kTaskEvent: {
          auto ev = protocol::Parse<wire::TaskEvent>(m);
          if (ev.ok()) progress.OnTask(*ev);
          break;
        }
        case Command::kJobEvent: {
          auto ev = protocol::Parse<wire::JobEvent>(m);
          if (!ev.ok()) break;
          progress.Draw(true);
          return ev->state();
        }
        case Command::kError: {
          auto e = protocol::Parse<wire::Error>(m);
          std::fprintf(stderr, "drover: %s\n", e.ok() ? e->message().c_str() : "error");
          if (job_id.empty()) return "";
          break;
        }
        default:
          break;
      }
    }
  }
}

}  // namespace

int RunCommand(const RunArgs& args) {
  // The backends a task may name, for this validation and the coordinator.
  spec::TaskKinds kinds;
  AddBuiltinTaskKinds(&kinds);
  spec::LoadOptions spec_options;
  spec_options.kinds = &kinds;
  // Validate here first: a bad spec is reported before anything starts.
  auto loaded = spec::LoadFile(args.file, spec_options);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return kExitUsage;
  }
  auto text = ReadText(args.file);
  if (!text.ok()) {
    std::fprintf(stderr, "%s\n", text.status().message().c_str());
    return kExitUsage;
  }
  const int slots = args.jobs > 0 ? args.jobs
                                  : std::max(1u, std::thread::hardware_concurrency());

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
  Coordinator coordinator(context, copt, clock);
  if (Status s = coordinator.Open(); !s.ok()) {
    std::fprintf(stderr, "drover: %s\n", s.message().c_str());
    return kExitFailed;
  }

  BackendRegistry registry;
  RegisterBuiltinBackends(registry);
  // The embedded worker must be able to run every task, or the job would
  // wait for a worker that never comes.
  for (const auto& task : loaded.spec->tasks) {
    if (!registry.Has(task.backend)) {
      std::fprintf(stderr, "%s: task '%s' uses the '%s' backend, which this drover does "
                   "not have\n", args.file.c_str(), task.name.c_str(), task.backend.c_str());
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
                   "--label %s\n", at.c_str(), task.name.c_str(), labels.c_str(), labels.c_str());
      return kExitUsage;
    }
    // Nor does it have services of its own (a worker configuration's).
    if (const auto own = loaded.spec->WorkerServices(task); !own.empty()) {
      std::fprintf(stderr, "%s: task '%s' needs the workers' own service '%s' (from: worker), "
                   "but drover run's embedded worker has none; declare the service in the job "
                   "or run it with drover submit on a drover worker whose --config declares "
                   "it\n", at.c_str(), task.name.c_str(), own.front().c_str());
      return kExitUsage;
    }
    if (task.slots > static_cast<uint32_t>(slots)) {
      std::fprintf(stderr, "%s: task '%s' needs %u %s slots (slots:), but drover run -j %d gives "
                   "the embedded worker %d\n", at.c_str(), task.name.c_str(), task.slots,
                   task.backend.c_str(), slots, slots);
      return kExitUsage;
    }
  }
  loaded.spec.reset();  // the coordinator loads its own copy; keep one in memory
  WorkerOptions wopt;
  wopt.coordinator = endpoint;
  wopt.name = "local";
  // The worker stops only once the job has ended, or at a second Ctrl-C,
  // which means "now": what still runs is killed at once.
  wopt.shutdown_grace = Duration(0);
  wopt.zygote = zygote;
  for (const auto& name : registry.Names()) wopt.slots[name] = slots;
  wopt.spool_dir = std::filesystem::path(args.state_dir) / "spool";
  Worker worker(context, wopt, registry, clock);
  if (Status s = worker.Start(); !s.ok()) {
    std::fprintf(stderr, "drover: %s\n", s.message().c_str());
    return kExitFailed;
  }

  InstallInterruptHandler();
  std::thread coordinator_thread([&] {
    if (Status s = coordinator.Run(); !s.ok()) spdlog::error("coordinator: {}", s.ToString());
  });
  std::thread worker_thread([&] {
    if (Status s = worker.Run(); !s.ok()) spdlog::error("worker: {}", s.ToString());
  });

  std::string state;
  std::string job_id;
  {
    zmq::socket_t client(context, zmq::socket_type::dealer);
    client.set(zmq::sockopt::linger, 0);
    client.set(zmq::sockopt::rcvhwm, 0);
    client.connect(endpoint);
    wire::Submit submit;
    submit.set_spec_file(args.file);
    submit.set_spec_text(*text);
    submit.set_resume(args.resume);
    submit.set_watch(true);
    submit.set_cwd(std::filesystem::current_path().string());
    (void)protocol::Send(client, protocol::Make(Command::kSubmit, submit));
    Progress progress(args.progress && ::isatty(STDOUT_FILENO));
    state = Watch(client, args, progress, job_id);
  }

  worker.Stop();
  worker_thread.join();
  coordinator.Stop();
  coordinator_thread.join();

  if (state.empty()) return kExitUsage;  // refused: the errors are printed
  if (state == "interrupted") {
    std::fprintf(stderr, "drover: interrupted; job %s left unfinished\n", job_id.c_str());
    return 130;
  }
  auto store = store::Store::Open(args.state_dir);
  if (store.ok()) {
    auto job = (*store)->GetJob(job_id);
    auto tasks = (*store)->Tasks(job_id);
    if (job.ok() && *job && tasks.ok()) {
      std::fputs("\n", stdout);
      PrintJobTable(stdout, **job, *tasks, /*brief=*/true);
    }
  }
  return state == "succeeded" ? kExitOk : kExitFailed;
}

}  // namespace drover::cli
