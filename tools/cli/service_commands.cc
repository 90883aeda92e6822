// `drover service reload NAME [--job JOB]`: asks the coordinator to reload
// a cluster service on every worker that runs it (docs/protocol.md,
// "Services"), and prints what each worker answered.
//
// A reload replaces the instances one at a time, each new one ready before
// the old one goes, so the answer may take minutes. The wait is bounded by
// --timeout (default 11m, a minute past the coordinator's own deadline,
// after which it answers with the silent workers as missing), and ends
// sooner when the coordinator falls silent: it heartbeats a waiting client.
#include <algorithm>
#include <cstdio>

#include "tools/cli/client.h"
#include "tools/cli/client_commands.h"
#include "tools/cli/render.h"

namespace drover::cli {
namespace {

using protocol::Command;
using protocol::Message;
using SteadyClock = std::chrono::steady_clock;

// Prints one line per service reached and one per missing worker; returns
// the exit code: 0 when at least one was reloaded and none failed or went
// missing.
int PrintReloaded(const wire::ServiceReloaded& reply) {
  int reloaded = 0;
  int failed = 0;
  for (const wire::ReloadedService& s : reply.services()) {
    const std::string owner = s.job_id().empty() ? "worker's own" : "job " + s.job_id();
    if (s.error().empty()) {
      ++reloaded;
      std::printf("%s  %s  %s  reloaded: %s\n", s.worker().c_str(), owner.c_str(),
                  s.name().c_str(), s.describe().c_str());
    } else {
      ++failed;
      std::printf("%s  %s  %s  FAILED: %s\n", s.worker().c_str(), owner.c_str(),
                  s.name().c_str(), s.error().c_str());
    }
  }
  for (const std::string& missing : reply.missing()) {
    std::printf("missing  %s\n", missing.c_str());
  }
  if (reloaded == 0 || failed > 0 || reply.missing_size() > 0) {
    std::fprintf(stderr, "drover: %d reloaded, %d failed, %s missing\n", reloaded, failed,
                 Plural(static_cast<uint64_t>(reply.missing_size()), "worker").c_str());
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

int ServiceReloadCommand(const ServiceReloadArgs& args) {
  auto timeout = ParseDurationFlag("--timeout", args.connection.timeout);
  if (!timeout.ok()) return PrintError(timeout.status());
  auto session = ClientSession::Open(args.connection);
  if (!session.ok()) return PrintError(session.status());
  Client& client = (*session)->client();

  wire::ServiceReload reload;
  reload.set_service(args.service);
  reload.set_job_id(args.job);
  if (Status s = client.Send(protocol::Make(Command::kServiceReload, reload)); !s.ok()) {
    return PrintError(Unavailable("cannot send to " + client.endpoint() + ": " + s.message()));
  }
  const auto sent = SteadyClock::now();
  const auto deadline = sent + *timeout;
  bool heard = false;  // anything (a heartbeat) since the request went
  while (SteadyClock::now() < deadline) {
    Message m;
    auto event = client.Next(std::min<Duration>(std::chrono::seconds(1),
                                                deadline - SteadyClock::now()),
                             &m);
    if (!event.ok()) return PrintError(event.status());
    if (*event == Client::Event::kLost) {
      // The coordinator heartbeats a client waiting for a reload: silence
      // means it is gone (the reload may go on without us).
      return PrintError(Unavailable(
          heard ? "lost the coordinator at " + client.endpoint() +
                      " while waiting for the reload; it may still complete"
                : client.NoAnswerMessage()));
    }
    if (*event == Client::Event::kIdle) {
      heard = heard || client.Silence() < SteadyClock::now() - sent;
      continue;
    }
    heard = true;
    if (m.command == Command::kError) {
      auto e = protocol::Parse<wire::Error>(m);
      return PrintError(FailedPrecondition(e.ok() ? e->message()
                                                  : "the coordinator refused the reload"));
    }
    if (m.command != Command::kServiceReloaded) continue;
    auto reply = protocol::Parse<wire::ServiceReloaded>(m);
    if (!reply.ok()) return PrintError(reply.status());
    return PrintReloaded(*reply);
  }
  return PrintError(DeadlineExceeded("no answer to the reload of service '" + args.service +
                                     "' within " + args.connection.timeout +
                                     " (raise --timeout)"));
}

}  // namespace drover::cli
