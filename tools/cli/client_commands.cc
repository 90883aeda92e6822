// The client commands that talk to a coordinator: `drover submit`,
// `drover retry`, `drover cancel`, and the remote forms of `drover status`
// and `drover logs` (remote_views.cc has `status`, `logs` and `workers`).
// Each one is a short dialog of docs/protocol.md over one Client.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include <spdlog/spdlog.h>

#include "tools/cli/client.h"
#include "tools/cli/client_commands.h"
#include "tools/cli/render.h"

namespace drover::cli {
namespace {

using protocol::Command;
using protocol::Message;

// Follows a job: prints task events (with --follow) and output chunks, and
// keeps watching across coordinator restarts. Returns the job's final
// state, or an error when the coordinator stayed away too long.
class JobWatcher {
 public:
  JobWatcher(Client& client, std::string job_id, bool follow, Duration lost_timeout)
      : client_(client), job_id_(std::move(job_id)), follow_(follow),
        lost_timeout_(lost_timeout) {}

  Result<std::string> Run() {
    auto lost_since = std::chrono::steady_clock::now();
    bool lost = false;
    Duration backoff = std::chrono::seconds(1);
    while (true) {
      Message m;
      auto event = client_.Next(std::chrono::milliseconds(500), &m);
      if (!event.ok()) return event.status();
      if (*event == Client::Event::kLost) {
        const auto now = std::chrono::steady_clock::now();
        if (!lost) {
          lost = true;
          lost_since = now;
          backoff = std::chrono::seconds(1);
          std::fprintf(stderr, "drover: lost the coordinator at %s; reconnecting (job %s runs "
                       "on)\n", client_.endpoint().c_str(), job_id_.c_str());
        }
        if (now - lost_since >= lost_timeout_) {
          return Unavailable("the coordinator at " + client_.endpoint() +
                             " did not come back within " + FormatDuration(lost_timeout_) +
                             "; job " + job_id_ + " may still be running (drover status " +
                             job_id_ + ")");
        }
        if (Status s = client_.Connect(); !s.ok()) return s;
        SendWatch();
        // The restarted coordinator answers the WATCH (or heartbeats) within
        // its liveness; meanwhile back off so a dead one is not hammered.
        Message first;
        auto answer = client_.Next(backoff, &first);
        if (!answer.ok()) return answer.status();
        if (*answer == Client::Event::kMessage) {
          lost = false;
          std::fprintf(stderr, "drover: reconnected to %s\n", client_.endpoint().c_str());
          if (auto done = Handle(first)) return *done;
        }
        backoff = std::min<Duration>(backoff * 2, std::chrono::seconds(32));
        continue;
      }
      if (*event == Client::Event::kIdle) continue;
      lost = false;
      if (auto done = Handle(m)) return *done;
    }
  }

  void SendWatch() {
    wire::Watch w;
    w.set_job_id(job_id_);
    w.set_output(follow_);
    (void)client_.Send(protocol::Make(Command::kWatch, w));
  }

 private:
  // The final state when `m` ends the job, else nullopt.
  std::optional<std::string> Handle(const Message& m) {
    switch (m.command) {
      case Command::kTaskEvent: {
        auto ev = protocol::Parse<wire::TaskEvent>(m);
        if (ev.ok() && ev->job_id() == job_id_) PrintTask(*ev);
        return std::nullopt;
      }
      case Command::kOutput: {
        auto out = protocol::Parse<wire::Output>(m);
        if (out.ok() && follow_ && !m.payloads.empty()) PrintOutput(*out, m.payloads[0]);
        return std::nullopt;
      }
      case Command::kJobEvent: {
        auto ev = protocol::Parse<wire::JobEvent>(m);
        if (!ev.ok() || ev->job_id() != job_id_) return std::nullopt;
        FlushOutput();
        const auto& c = ev->counts();
        std::fprintf(stderr, "job %s: %s, %u tasks: %u succeeded, %u failed, %u other\n",
                     job_id_.c_str(), ev->state().c_str(), c.total(), c.succeeded(), c.failed(),
                     c.other());
        return ev->state();
      }
      case Command::kError: {
        auto e = protocol::Parse<wire::Error>(m);
        std::fprintf(stderr, "drover: the coordinator says: %s\n",
                     e.ok() ? e->message().c_str() : "error");
        return std::nullopt;
      }
      default:
        return std::nullopt;
    }
  }

  void PrintTask(const wire::TaskEvent& ev) {
    const std::string& s = ev.state();
    std::string tag;
    std::string detail;
    if (s == "succeeded") {
      tag = "ok";
      detail = Micros(static_cast<int64_t>(ev.wall_us()));
    } else if (s == "failed" || s == "cancelled" || s == "retry-wait") {
      tag = s == "failed" ? "FAILED" : s == "cancelled" ? "cancel" : "retry";
      detail = ev.detail() + " (attempt " + std::to_string(ev.attempt()) + ")";
    } else if (s == "blocked" || s == "skipped") {
      tag = s;
    } else if (s == "running" && follow_) {
      tag = "start";
      detail = ev.worker().empty() ? "" : "on " + ev.worker();
    }
    if (tag.empty()) return;
    // Failures always; the rest only when following.
    if (!follow_ && tag != "FAILED" && tag != "retry" && tag != "cancel") return;
    FlushOutput();
    std::printf("%-7s %s%s%s\n", tag.c_str(), ev.task().c_str(), detail.empty() ? "" : "  ",
                detail.c_str());
    std::fflush(stdout);
  }

  // Output lines are prefixed with their task; a chunk's unfinished last
  // line waits for the next chunk of the same stream.
  void PrintOutput(const wire::Output& out, const std::string& bytes) {
    const std::string key = out.task() + (out.stream() == 2 ? "!err" : "");
    std::string& pending = partial_[key];
    pending += bytes;
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::fprintf(out.stream() == 2 ? stderr : stdout, "%s| %.*s\n", out.task().c_str(),
                   static_cast<int>(nl - start), pending.data() + start);
    }
    pending.erase(0, start);
    std::fflush(stdout);
  }

  void FlushOutput() {
    for (auto& [key, text] : partial_) {
      if (text.empty()) continue;
      const bool err = key.size() > 4 && key.compare(key.size() - 4, 4, "!err") == 0;
      const std::string task = err ? key.substr(0, key.size() - 4) : key;
      std::fprintf(err ? stderr : stdout, "%s| %s\n", task.c_str(), text.c_str());
      text.clear();
    }
  }

  Client& client_;
  std::string job_id_;
  bool follow_;
  Duration lost_timeout_;
  std::map<std::string, std::string> partial_;
};

int ExitForState(const Result<std::string>& state) {
  if (!state.ok()) {
    std::fprintf(stderr, "drover: %s\n", state.status().message().c_str());
    return kExitFailed;
  }
  return *state == "succeeded" ? kExitOk : kExitFailed;
}

// Prints a SUBMITTED answer; returns the job id, or nullopt (errors
// printed) when the job was refused.
std::optional<std::string> TakeSubmitted(const Message& m) {
  auto s = protocol::Parse<wire::Submitted>(m);
  if (!s.ok()) {
    std::fprintf(stderr, "drover: %s\n", s.status().message().c_str());
    return std::nullopt;
  }
  if (s->errors_size() > 0 || s->job_id().empty()) {
    for (const auto& e : s->errors()) std::fprintf(stderr, "%s\n", e.c_str());
    return std::nullopt;
  }
  std::printf("%s\n", s->job_id().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "drover: job %s: %u tasks", s->job_id().c_str(), s->tasks());
  if (s->carried_over()) {
    std::fprintf(stderr, " (%u succeeded earlier, not re-run)", s->carried_over());
  }
  std::fprintf(stderr, "\n");
  return s->job_id();
}

}  // namespace

Result<std::unique_ptr<ClientSession>> ClientSession::Open(const ConnectionArgs& args) {
  auto options = MakeClientOptions(args);
  if (!options.ok()) return options.status();
  auto session = std::unique_ptr<ClientSession>(new ClientSession());
  session->client_ = std::make_unique<Client>(session->context_, std::move(*options));
  if (Status s = session->client_->Connect(); !s.ok()) return s;
  return session;
}

int PrintError(const Status& s) {
  std::fprintf(stderr, "drover: %s\n", s.message().c_str());
  return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

int SubmitCommand(const SubmitArgs& args) {
  std::ifstream in(args.file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: cannot read the file\n", args.file.c_str());
    return kExitUsage;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto lost_timeout = ParseDurationFlag("--lost-timeout", args.lost_timeout);
  if (!lost_timeout.ok()) return PrintError(lost_timeout.status());
  auto session = ClientSession::Open(args.connection);
  if (!session.ok()) return PrintError(session.status());
  Client& client = (*session)->client();

  wire::Submit submit;
  submit.set_spec_file(args.file);
  submit.set_spec_text(text.str());
  submit.set_resume(args.resume);
  submit.set_watch(args.wait || args.follow);
  std::error_code ec;
  submit.set_cwd(std::filesystem::current_path(ec).string());
  // docs/protocol.md: a client refuses locally what the coordinator would
  // drop unanswered.
  if (submit.ByteSizeLong() > protocol::Limits{}.max_body) {
    std::fprintf(stderr, "%s: the spec is too large to submit (over 4 MiB)\n", args.file.c_str());
    return kExitUsage;
  }
  auto answer = client.Call(protocol::Make(Command::kSubmit, submit), {Command::kSubmitted});
  if (!answer.ok()) return PrintError(answer.status());
  auto job_id = TakeSubmitted(*answer);
  if (!job_id) return kExitUsage;
  if (!args.wait && !args.follow) return kExitOk;
  JobWatcher watcher(client, *job_id, args.follow, *lost_timeout);
  // SUBMIT's watch brings events; output comes to a WATCH that asks for it.
  if (args.follow) watcher.SendWatch();
  return ExitForState(watcher.Run());
}

int RetryCommand(const RetryArgs& args) {
  auto lost_timeout = ParseDurationFlag("--lost-timeout", args.lost_timeout);
  if (!lost_timeout.ok()) return PrintError(lost_timeout.status());
  auto session = ClientSession::Open(args.connection);
  if (!session.ok()) return PrintError(session.status());
  Client& client = (*session)->client();
  wire::RetryJob retry;
  retry.set_job_id(args.job);
  retry.set_watch(args.wait);
  auto answer = client.Call(protocol::Make(Command::kRetryJob, retry), {Command::kSubmitted});
  if (!answer.ok()) return PrintError(answer.status());
  auto job_id = TakeSubmitted(*answer);
  if (!job_id) return kExitFailed;
  if (!args.wait) return kExitOk;
  JobWatcher watcher(client, *job_id, /*follow=*/false, *lost_timeout);
  return ExitForState(watcher.Run());
}

int CancelCommand(const CancelArgs& args) {
  const size_t slash = args.target.find('/');
  wire::CancelJob cancel;
  cancel.set_job_id(args.target.substr(0, slash));
  if (slash != std::string::npos) cancel.set_task(args.target.substr(slash + 1));
  if (cancel.job_id().empty() || (slash != std::string::npos && cancel.task().empty())) {
    std::fprintf(stderr, "drover cancel: give JOB or JOB/TASK\n");
    return kExitUsage;
  }
  auto session = ClientSession::Open(args.connection);
  if (!session.ok()) return PrintError(session.status());
  auto answer = (*session)->client().Call(protocol::Make(Command::kCancelJob, cancel),
                                          {Command::kOk, Command::kJobEvent});
  if (!answer.ok()) return PrintError(answer.status());
  std::string text;
  if (answer->command == Command::kOk) {
    auto ok = protocol::Parse<wire::Ok>(*answer);
    if (ok.ok()) text = ok->message();
  }
  if (text.empty()) text = "cancelling " + args.target;
  std::printf("%s\n", text.c_str());
  return kExitOk;
}

}  // namespace drover::cli
