// `drover coordinator` and `drover worker`: the daemons of a distributed
// deployment (docs/operations.md, "Several hosts"). Both run the loop that
// `drover run` embeds, on tcp:// instead of inproc://.
//
// Signals: both block SIGINT and SIGTERM in every thread before any starts
// and take them synchronously on the main thread (sigtimedwait), so no code
// runs in a signal handler and the loops' threads are never interrupted.
// SIGHUP is taken the same way: the worker re-reads its configuration's
// `services:`, the coordinator its --pipelines directory.
// Spawned tasks get an empty signal mask from the backends.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include "backends/backend.h"
#include "backends/fork/zygote.h"
#include "backends/process/guardian.h"
#include "core/coordinator/coordinator.h"
#include "core/protocol/security.h"
#include "core/spec/job_spec.h"
#include "core/spec/worker_config.h"
#include "tools/cli/commands.h"
#include "tools/cli/render.h"
#include "tools/http/metrics_server.h"
#include "tools/http/server.h"
#include "worker/worker.h"

namespace drover::cli {
namespace {

// Blocks the stop signals in this thread and every thread started after;
// returns the set, for WaitForSignal.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);  // the loop thread's "I returned" nudge
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Waits for a signal of `set`; 0 when `done` became true first (checked
// every 200 ms, in case the loop ended without a nudge).
int WaitForSignal(const sigset_t& set, const std::atomic<bool>& done) {
  while (!done.load()) {
    const timespec tick = {0, 200'000'000};
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig > 0) return sig;
  }
  return 0;
}
// Blocks SIGHUP too (a reload, taken by WaitForSignal) and adds it to `set`.
void AddHangupSignal(sigset_t* set) {
  sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, nullptr);
  sigaddset(set, SIGHUP);
}


const char* SignalName(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal"; }

// The security set-up of a listening coordinator. Returns a non-ok Status
// (a usage error) when the flags do not make a safe, consistent choice.
Status CheckListenSecurity(const CoordinatorArgs& args) {
  if (!args.curve_secret.empty() && args.insecure) {
    return InvalidArgument("--insecure and --curve-secret exclude each other");
  }
  if (!args.curve_secret.empty() && args.authorized_keys.empty()) {
    return InvalidArgument(
        "--curve-secret needs --authorized-keys FILE (the public keys of the workers and "
        "clients to accept, one per line)");
  }
  if (args.curve_secret.empty() && !args.authorized_keys.empty()) {
    return InvalidArgument("--authorized-keys needs --curve-secret FILE (the coordinator's key)");
  }
  if (!args.curve_secret.empty() || args.insecure) return Status::Ok();
  for (const auto& endpoint : args.listen) {
    if (!protocol::IsLoopbackEndpoint(endpoint)) {
      return InvalidArgument(
          "refusing to listen on " + endpoint +
          " without CURVE: anyone who reaches it could run commands on your workers. Give "
          "--curve-secret FILE --authorized-keys FILE (make keys with `drover keygen NAME`), "
          "or --insecure on a network you trust");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Duration> ParseDurationFlag(const std::string& flag, const std::string& text) {
  auto d = spec::ParseDuration(text);
  if (!d) {
    return InvalidArgument(flag + ": '" + text + "' is not a duration (e.g. 500ms, 30s, 5m)");
  }
  return *d;
}

namespace {

// --heartbeat of the daemons: 10 ms to 10 min. Shorter would reconnect or
// expire peers in a busy loop; longer leaves a dead peer unnoticed for hours.
Result<Duration> ParseHeartbeatFlag(const std::string& text) {
  auto d = ParseDurationFlag("--heartbeat", text);
  if (!d.ok()) return d;
  if (*d < std::chrono::milliseconds(10) || *d > std::chrono::minutes(10)) {
    return InvalidArgument("--heartbeat: '" + text + "' is out of range (10ms to 10m)");
  }
  return d;
}

// Each connected peer holds a descriptor of the coordinator: it takes the
// open-files limit its hard limit allows, so that a thousand connections
// do not exhaust a soft limit of 1,024 (libzmq then retries its accept in
// a busy loop, and says nothing).
void RaiseOpenFilesLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return;
  const rlim_t before = r.rlim_cur;
  r.rlim_cur = r.rlim_max == RLIM_INFINITY ? std::max<rlim_t>(before, rlim_t{1} << 20)
                                           : r.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &r) == 0) {
    spdlog::info("coordinator: open files limit raised from {} to {}", before,
                 r.rlim_cur);
  }
}

// Every endpoint in `endpoints` is one ZeroMQ takes as written.
Status CheckEndpoints(const std::string& flag,
                      const std::vector<std::string>& endpoints) {
  for (const auto& e : endpoints) {
    if (std::string problem = protocol::EndpointProblem(e); !problem.empty()) {
      return InvalidArgument(flag + " " + problem);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<http::HttpServer>> StartHttp(zmq::context_t& context,
                                                    const HttpArgs& args,
                                                    const std::string& endpoint) {
  if (args.address.empty()) return std::unique_ptr<http::HttpServer>();
  http::HttpOptions options;
  options.address = args.address;
  options.token_file = args.token_file;
  options.coordinator = endpoint;
  auto server = std::make_unique<http::HttpServer>(context, options);
  if (Status s = server->Start(); !s.ok()) return s;
  return server;
}

int CoordinatorCommand(const CoordinatorArgs& args, const BackendRegistry& registry) {
  if (Status s = CheckEndpoints("--listen", args.listen); !s.ok()) {
    std::fprintf(stderr, "drover coordinator: %s\n", s.message().c_str());
    return kExitUsage;
  }
  if (Status s = CheckListenSecurity(args); !s.ok()) {
    std::fprintf(stderr, "drover coordinator: %s\n", s.message().c_str());
    return kExitUsage;
  }
  auto heartbeat = ParseHeartbeatFlag(args.heartbeat);
  if (!heartbeat.ok()) {
    std::fprintf(stderr, "drover coordinator: %s\n", heartbeat.status().message().c_str());
    return kExitUsage;
  }
  if (std::error_code ec; !args.pipelines.empty() &&
                          !std::filesystem::is_directory(args.pipelines, ec)) {
    std::fprintf(stderr, "drover coordinator: --pipelines %s: not a directory%s%s\n",
                 args.pipelines.c_str(), ec ? ": " : "", ec ? ec.message().c_str() : "");
    return kExitUsage;
  }
  std::string secret;
  if (!args.curve_secret.empty()) {
    auto key = protocol::ReadSecretKeyFile(args.curve_secret);
    if (!key.ok()) {
      std::fprintf(stderr, "drover coordinator: %s\n", key.status().message().c_str());
      return kExitUsage;
    }
    secret = *key;
  }

  sigset_t signals = BlockStopSignals();
  AddHangupSignal(&signals);
  RaiseOpenFilesLimit();
  RealClock clock;
  zmq::context_t context;
  // The ZAP handler must be bound in this context before the ROUTER binds.
  std::unique_ptr<protocol::ZapHandler> zap;
  CoordinatorOptions options;
  if (!secret.empty()) {
    auto started = protocol::ZapHandler::Start(context, args.authorized_keys);
    if (!started.ok()) {
      std::fprintf(stderr, "drover coordinator: %s\n", started.status().message().c_str());
      return kExitUsage;
    }
    zap = std::move(*started);
    options.configure_socket = [secret](zmq::socket_t& socket) {
      return protocol::ConfigureCurveServer(socket, secret);
    };
  }
  options.endpoints = args.listen;
  // The HTTP front end is a client like `drover status`, on an endpoint of
  // its own in this process (inproc: no CURVE, admin role; it checks its
  // own tokens).
  const std::string http_endpoint = "inproc://drover-http";
  if (!args.http.address.empty()) options.endpoints.push_back(http_endpoint);
  options.state_dir = args.state_dir;
  options.heartbeat_interval = *heartbeat;
  options.liveness = args.liveness;
  // Workers may declare pools in their configuration; a job may use them.
  options.spec_options.undeclared_pools = true;
  options.spec_options.kinds = &registry.kinds();
  options.pipelines_dir = args.pipelines;
  Coordinator coordinator(context, options, clock);
  if (Status s = coordinator.Open(); !s.ok()) {
    std::fprintf(stderr, "drover coordinator: %s\n", s.message().c_str());
    return kExitFailed;
  }
  // The first line of stdout is the bound endpoint (port 0 resolved), so
  // that a script or a test can connect to it.
  for (const auto& endpoint : coordinator.endpoints()) {
    if (endpoint != http_endpoint) std::printf("%s\n", endpoint.c_str());
  }
  auto http = StartHttp(context, args.http, http_endpoint);
  if (!http.ok()) {
    std::fprintf(stderr, "drover coordinator: %s\n", http.status().message().c_str());
    return http.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
  }
  if (*http) {
    std::printf("%s\n", (*http)->url().c_str());
    spdlog::info("coordinator: dashboard and API at {}", (*http)->url());
  }
  std::fflush(stdout);
  spdlog::info("coordinator: listening on {} ({}), state in {}", coordinator.endpoints().front(),
               secret.empty() ? "no CURVE" : "CURVE", args.state_dir);

  std::atomic<bool> done{false};
  Status result;
  const pthread_t main_thread = pthread_self();
  std::thread loop([&] {
    result = coordinator.Run();
    done.store(true);
    pthread_kill(main_thread, SIGUSR1);
  });
  int sig = WaitForSignal(signals, done);
  // Bounded by the signals sent: each SIGHUP is one re-read, in the loop.
  while (sig == SIGHUP) {
    coordinator.ReloadPipelines();
    sig = WaitForSignal(signals, done);
  }
  if (sig == SIGINT || sig == SIGTERM) {
    spdlog::info("coordinator: {}: stopping", SignalName(sig));
  }
  if (*http) (*http)->Stop();  // its requests need the loop: stop it first
  coordinator.Stop();
  loop.join();
  if (!result.ok()) {
    spdlog::error("coordinator: {}", result.ToString());
    return kExitFailed;
  }
  return kExitOk;
}

namespace {

// Splits "KEY=VALUE" flags. Errors name the flag.
Result<std::pair<std::string, std::string>> SplitPair(const std::string& flag,
                                                      const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgument(flag + " '" + text + "': expected KEY=VALUE");
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

// WorkerOptions from the config file (if any) overlaid with the flags, the
// flags winning. A usage error names the flag or FILE:LINE:COL.
Status BuildWorkerOptions(const WorkerArgs& args, const BackendRegistry& registry,
                          WorkerOptions* options, Duration* drain_timeout) {
  *drain_timeout = std::chrono::seconds(30);
  // Tasks held ready beyond the slots, unless told otherwise: 4 times the
  // slots, used by the coordinator beyond the slots only for short tasks
  // (docs/operations.md, "drover worker").
  options->prefetch = WorkerOptions::kPrefetchDefault;
  if (!args.config.empty()) {
    auto loaded = spec::LoadWorkerConfigFile(args.config);
    if (!loaded.ok()) {
      std::string text;
      for (const auto& e : loaded.errors) text += (text.empty() ? "" : "\n") + e.ToString();
      return InvalidArgument(text);
    }
    const spec::WorkerConfig& c = *loaded.config;
    options->name = c.name;
    options->coordinator = c.coordinator;
    options->slots = c.slots;
    if (c.prefetch) options->prefetch = *c.prefetch;
    options->labels = c.labels;
    if (c.drain_timeout) *drain_timeout = *c.drain_timeout;
    if (!c.spool_dir.empty()) options->spool_dir = c.spool_dir;
    for (const auto& p : c.pools) options->pools.emplace(p.name, p);
    for (const auto& p : c.plugins) options->plugins.emplace_back(p);
    options->services = c.services;
    options->services_file = args.config;
  }
  if (!args.connect.empty()) options->coordinator = args.connect;
  if (options->coordinator.empty()) {
    return InvalidArgument(
        "no coordinator: give --connect tcp://HOST:PORT (or `coordinator:` in --config, or "
        "DROVER_COORDINATOR)");
  }
  if (Status s = CheckEndpoints("coordinator", {options->coordinator}); !s.ok()) return s;
  if (!args.name.empty()) options->name = args.name;
  if (!args.spool_dir.empty()) options->spool_dir = args.spool_dir;
  if (!args.drain_timeout.empty()) {
    auto d = ParseDurationFlag("--drain-timeout", args.drain_timeout);
    if (!d.ok()) return d.status();
    *drain_timeout = *d;
  }
  auto heartbeat = ParseHeartbeatFlag(args.heartbeat);
  if (!heartbeat.ok()) return heartbeat.status();
  options->heartbeat_interval = *heartbeat;
  options->liveness = args.liveness;
  if (args.prefetch) options->prefetch = *args.prefetch;
  // `--slots spawn=2 --slots cluster=1` or `--slots spawn=2,cluster=1`.
  std::vector<std::string> slot_items;
  for (const auto& flag : args.slots) {
    size_t start = 0;
    while (start <= flag.size()) {  // bounded: start grows every turn
      const size_t comma = std::min(flag.find(',', start), flag.size());
      slot_items.push_back(flag.substr(start, comma - start));
      start = comma + 1;
    }
  }
  for (const auto& text : slot_items) {
    auto kv = SplitPair("--slots", text);
    if (!kv.ok()) return kv.status();
    int n = -1;
    try {
      size_t used = 0;
      n = std::stoi(kv->second, &used);
      if (used != kv->second.size()) n = -1;
    } catch (const std::exception&) {
      n = -1;
    }
    if (n < 0 || n > 100000) {
      return InvalidArgument("--slots " + text +
                             ": the count must be a whole number from 0 to 100000");
    }
    options->slots[kv->first] = n;
  }
  for (const auto& text : args.labels) {
    auto kv = SplitPair("--label", text);
    if (!kv.ok()) return kv.status();
    options->labels[kv->first] = kv->second;
  }
  for (const auto& [backend, n] : options->slots) {
    if (!registry.Has(backend)) {
      std::string names;
      for (const auto& name : registry.Names()) names += (names.empty() ? "" : ", ") + name;
      return InvalidArgument("--slots: unknown backend '" + backend + "' (this drover has " +
                             names + ")");
    }
  }
  if (options->slots.empty()) {
    // Like `drover run`: every backend, one slot per core.
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (const auto& name : registry.Names()) options->slots[name] = cores;
  }
  return Status::Ok();
}

// SIGHUP: re-reads `services:` of the configuration file and applies it.
// The other keys are not re-read. A file that no longer parses changes
// nothing.
void ReloadWorkerServices(const WorkerArgs& args, Worker& worker) {
  if (args.config.empty()) {
    spdlog::warn("worker {}: SIGHUP: no --config file to re-read; nothing changes",
                 worker.name());
    return;
  }
  auto loaded = spec::LoadWorkerConfigFile(args.config);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) {
      spdlog::error("worker {}: SIGHUP: {}", worker.name(), e.ToString());
    }
    spdlog::error("worker {}: SIGHUP: {} has errors; nothing changes", worker.name(),
                  args.config);
    return;
  }
  spdlog::info("worker {}: SIGHUP: re-reading the services of {} (its other settings need a "
               "restart)",
               worker.name(), args.config);
  const std::vector<Status> errors = worker.UpdateServices(loaded.config->services);
  for (const Status& e : errors) spdlog::error("worker {}: SIGHUP: {}", worker.name(), e.message());
  std::string names;
  for (const std::string& n : worker.ServiceNames()) names += (names.empty() ? "" : ", ") + n;
  spdlog::info("worker {}: SIGHUP: done ({}); services now: {}", worker.name(),
               Plural(errors.size(), "error"), names.empty() ? "none" : names);
}

}  // namespace

int WorkerCommand(const WorkerArgs& args, const BackendRegistry& registry) {
  WorkerOptions options;
  Duration drain_timeout{};
  if (Status s = BuildWorkerOptions(args, registry, &options, &drain_timeout); !s.ok()) {
    std::fprintf(stderr, "drover worker: %s\n", s.message().c_str());
    return kExitUsage;
  }
  std::string secret, server_key;
  if (!args.curve_secret.empty() || !args.curve_server_key.empty()) {
    if (args.curve_secret.empty() || args.curve_server_key.empty()) {
      std::fprintf(stderr,
                   "drover worker: CURVE needs both --curve-secret FILE (this worker's key) and "
                   "--curve-server-key FILE (the coordinator's public key)\n");
      return kExitUsage;
    }
    auto s = protocol::ReadSecretKeyFile(args.curve_secret);
    auto p = s.ok() ? protocol::ReadPublicKeyFile(args.curve_server_key) : s;
    if (!p.ok()) {
      std::fprintf(stderr, "drover worker: %s\n", p.status().message().c_str());
      return kExitUsage;
    }
    secret = *s;
    server_key = *p;
    options.configure_socket = [secret, server_key](zmq::socket_t& socket) {
      return protocol::ConfigureCurveClient(socket, secret, server_key);
    };
  }

  // One live worker per spool, and what a dead one left running on it dies
  // before this one registers (or the coordinator's retry of those tasks
  // would run next to them). The claim is held until this process exits.
  auto spool = ClaimSpool(options.spool_dir);
  if (!spool.ok()) {
    std::fprintf(stderr, "drover worker: %s; give each worker on a host its own --spool-dir\n",
                 spool.status().message().c_str());
    return kExitUsage;
  }
  if (!spool->unlocked.empty()) {
    spdlog::warn("worker: {}; a second worker on {} would not be refused", spool->unlocked,
                 options.spool_dir.string());
  }
  if (spool->killed > 0) {
    spdlog::warn("worker: killed {} left running by an earlier worker on {}",
                 Plural(static_cast<uint64_t>(spool->killed), "process", "processes"),
                 options.spool_dir.string());
  }
  // Every task, pool process and the zygote inherit the marker.
  const std::string marker = SetGuardianMarker();
  // `cow` pools fork from a zygote, which must be forked now, while this
  // process has a single thread (no ZeroMQ context, no backend yet). Any
  // job may bring a cow pool, so a worker with fork slots always has one.
  auto fork_slots = options.slots.find("fork");
  if (fork_slots != options.slots.end() && fork_slots->second > 0) {
    ZygoteOptions zopt;
    zopt.plugins = options.plugins;
    auto started = StartZygote(std::move(zopt));
    if (started.ok()) {
      options.zygote = std::move(started.value());
    } else {
      // The worker runs; its cow tasks fail with this reason.
      spdlog::error("worker: cannot start the zygote for cow pools: {}",
                    started.status().message());
    }
  }
  // The guardian is forked after the zygote, which must not hold its pipe,
  // and before any thread. Without it the worker runs, unprotected.
  {
    std::error_code ec;
    std::filesystem::create_directories(options.spool_dir, ec);
    auto guardian = Guardian::Start(
        GuardianOptions{marker, options.spool_dir / kGuardianSpoolFile});
    if (guardian.ok()) {
      options.guardian = std::move(guardian.value());
    } else {
      spdlog::error("worker: cannot start the guardian; tasks will outlive a killed worker: {}",
                    guardian.status().message());
    }
  }
  // The second signal means "now": what still runs is killed at once.
  options.shutdown_grace = Duration(0);

  sigset_t signals = BlockStopSignals();
  AddHangupSignal(&signals);
  RealClock clock;
  zmq::context_t context;
  Worker worker(context, options, registry, clock);
  // Bound before the backends start, so that a bad --metrics costs
  // nothing; stopped before `worker` goes: its requests read it.
  std::optional<http::MetricsServer> metrics;
  if (!args.metrics.empty()) {
    http::ListenOptions listen;
    listen.address = args.metrics;
    listen.token_file = args.metrics_token;
    listen.flag = "--metrics";
    listen.token_flag = "--metrics-token";
    listen.exposure = "read this worker's metrics";
    listen.threads = 2;
    metrics.emplace(listen, [&worker] { return worker.MetricsText(); });
    if (Status s = metrics->Start(); !s.ok()) {
      std::fprintf(stderr, "drover worker: %s\n", s.message().c_str());
      return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
    }
    std::printf("%s\n", metrics->url().c_str());
    std::fflush(stdout);
    spdlog::info("worker {}: metrics at {}/metrics", worker.name(), metrics->url());
  }
  if (Status s = worker.Start(); !s.ok()) {
    std::fprintf(stderr, "drover worker: %s\n", s.message().c_str());
    return kExitFailed;
  }
  std::string slots;
  for (const auto& [backend, n] : options.slots) {
    slots += (slots.empty() ? "" : ", ") + backend + "=" + std::to_string(n);
  }
  spdlog::info("worker {}: connecting to {} ({}), slots {}", worker.name(), options.coordinator,
               secret.empty() ? "no CURVE" : "CURVE", slots);

  std::atomic<bool> done{false};
  Status result;
  const pthread_t main_thread = pthread_self();
  std::thread loop([&] {
    result = worker.Run();
    done.store(true);
    pthread_kill(main_thread, SIGUSR1);
  });
  bool stopped_at_once = false;
  int sig = WaitForSignal(signals, done);
  // Bounded by the signals sent: each SIGHUP is one re-read.
  while (sig == SIGHUP) {
    ReloadWorkerServices(args, worker);
    sig = WaitForSignal(signals, done);
  }
  if (sig == SIGINT || sig == SIGTERM) {
    spdlog::info("worker {}: {}: draining (up to {}; {} again to stop at once)", worker.name(),
                 SignalName(sig), FormatDuration(drain_timeout), SignalName(sig));
    worker.Drain(drain_timeout);
    do {
      sig = WaitForSignal(signals, done);
    } while (sig == SIGHUP);  // no re-read while draining
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::warn("worker {}: {} again: stopping now", worker.name(), SignalName(sig));
      stopped_at_once = true;
    }
  }
  worker.Stop();
  loop.join();
  if (metrics) metrics->Stop();
  if (!result.ok()) {
    spdlog::error("worker {}: {}", worker.name(), result.ToString());
    return kExitFailed;
  }
  return stopped_at_once ? kExitFailed : kExitOk;
}

}  // namespace drover::cli
