#include "tools/cli/job_watcher.h"

#include <algorithm>
#include <cstdio>

#include "core/dag/states.h"
#include "tools/cli/render.h"

namespace drover::cli {
namespace {

using protocol::Command;
using protocol::Message;
using SteadyClock = std::chrono::steady_clock;

bool Shown(TaskLines lines, std::optional<dag::TaskState> state) {
  if (!state) return false;
  switch (lines) {
    case TaskLines::kProblems:
      return *state == dag::TaskState::kFailed || *state == dag::TaskState::kCancelled ||
             *state == dag::TaskState::kRetryWait;
    case TaskLines::kEnded:
      return *state != dag::TaskState::kRunning;
    case TaskLines::kAll:
      return true;
  }
  return false;
}

}  // namespace

JobWatcher::JobWatcher(Client& client, std::string job_id, WatchOptions options)
    : client_(client),
      job_id_(std::move(job_id)),
      options_(std::move(options)),
      start_(SteadyClock::now()) {}

void JobWatcher::SendWatch() {
  wire::Watch w;
  w.set_job_id(job_id_);
  w.set_output(options_.output);
  w.set_problems_only(options_.problems_only);
  w.set_max_batch(kEventBatch);
  (void)client_.Send(protocol::Make(Command::kWatch, w));
}

Result<wire::JobEvent> JobWatcher::Run() {
  // A live line is redrawn (and Ctrl-C seen) at least this often.
  const Duration turn = std::chrono::milliseconds(options_.live ? 200 : 500);
  auto lost_since = SteadyClock::now();
  bool lost = false;
  Duration backoff = std::chrono::seconds(1);
  while (true) {
    if (Interrupted()) return Cancelled("interrupted");
    Message m;
    // What was printed goes out when nothing more is waiting, or after at
    // most kFlushEvery of a burst: one write for a burst of task lines,
    // instead of one a task (a 100,000-task `drover run` into a pipe made
    // 100,000 of them, docs/benchmarks.md, session 20).
    auto event = client_.Next(Duration::zero(), &m);
    if (event.ok() && *event == Client::Event::kIdle) {
      Flush();
      event = client_.Next(turn, &m);
    } else if (SteadyClock::now() - last_flush_ >= kFlushEvery) {
      Flush();
    }
    if (!event.ok()) return event.status();
    if (*event == Client::Event::kLost) {
      const auto now = SteadyClock::now();
      if (!lost) {
        Flush();  // what was printed before the message below
        lost = true;
        lost_since = now;
        backoff = std::chrono::seconds(1);
        std::fprintf(stderr,
                     "drover: lost the coordinator at %s; reconnecting (job %s runs on)\n",
                     client_.endpoint().c_str(), job_id_.c_str());
      }
      if (now - lost_since >= options_.lost_timeout) {
        return Unavailable("the coordinator at " + client_.endpoint() +
                           " did not come back within " +
                           FormatDuration(options_.lost_timeout) + "; job " + job_id_ +
                           " may still be running (drover status " + job_id_ + ")");
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
        if (auto done = Handle(first)) return *std::move(done);
      }
      backoff = std::min<Duration>(backoff * 2, std::chrono::seconds(32));
      continue;
    }
    if (*event == Client::Event::kIdle) {
      DrawProgress(false);
      continue;
    }
    lost = false;
    if (auto done = Handle(m)) return *std::move(done);
  }
}

std::optional<wire::JobEvent> JobWatcher::Handle(const Message& m) {
  switch (m.command) {
    case Command::kTaskEvent: {
      // The head, then the events of `more` in order; an entry with a
      // `more` of its own is malformed and skipped.
      if (!event_.ParseFromString(m.body)) return std::nullopt;
      if (event_.job_id() == job_id_) PrintTask(event_);
      for (const wire::TaskEvent& entry : event_.more()) {
        if (entry.more_size() == 0 && entry.job_id() == job_id_) PrintTask(entry);
      }
      return std::nullopt;
    }
    case Command::kOutput: {
      auto out = protocol::Parse<wire::Output>(m);
      if (out.ok() && options_.output && !m.payloads.empty()) {
        PrintOutput(*out, m.payloads[0]);
      }
      return std::nullopt;
    }
    case Command::kJobEvent: {
      auto ev = protocol::Parse<wire::JobEvent>(m);
      if (!ev.ok() || ev->job_id() != job_id_) return std::nullopt;
      FlushOutput();
      DrawProgress(true);
      std::fflush(stdout);
      return *std::move(ev);
    }
    case Command::kError: {
      std::fflush(stdout);  // what was printed before the message below
      auto e = protocol::Parse<wire::Error>(m);
      std::fprintf(stderr, "%s%s\n", options_.error_prefix.c_str(),
                   e.ok() ? e->message().c_str() : "error");
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

bool JobWatcher::Interrupted() {
  if (options_.interrupts == nullptr) return false;
  const int n = options_.interrupts->load();
  if (n >= 2) return true;
  if (n == 1 && !cancel_sent_) {
    std::fflush(stdout);
    std::fprintf(stderr, "\ndrover: cancelling job %s (Ctrl-C again to quit at once)\n",
                 job_id_.c_str());
    wire::CancelJob cancel;
    cancel.set_job_id(job_id_);
    (void)client_.Send(protocol::Make(Command::kCancelJob, cancel));
    cancel_sent_ = true;
  }
  return false;
}

void JobWatcher::PrintTask(const wire::TaskEvent& ev) {
  counts_ = ev.counts();
  if (!Shown(options_.lines, dag::ParseTaskState(ev.state()))) return;
  line_.clear();
  AppendTaskLine(ev, &line_);
  if (line_.empty()) return;
  FlushOutput();
  // Above the live line, which is drawn again below it.
  if (options_.live) std::fputs("\r\033[K", stdout);
  std::fwrite(line_.data(), 1, line_.size(), stdout);
}

void JobWatcher::PrintOutput(const wire::Output& out, const std::string& bytes) {
  const std::string key = out.task() + (out.stream() == 2 ? "!err" : "");
  std::string& pending = partial_[key];
  pending += bytes;
  // stderr is written at once: what stdout holds goes first, so that the
  // two keep their order where they meet (2>&1).
  if (out.stream() == 2) std::fflush(stdout);
  size_t start = 0;
  for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::fprintf(out.stream() == 2 ? stderr : stdout, "%s| %.*s\n", out.task().c_str(),
                 static_cast<int>(nl - start), pending.data() + start);
  }
  pending.erase(0, start);
}

void JobWatcher::FlushOutput() {
  for (auto& [key, text] : partial_) {
    if (text.empty()) continue;
    const bool err = key.size() > 4 && key.compare(key.size() - 4, 4, "!err") == 0;
    const std::string task = err ? key.substr(0, key.size() - 4) : key;
    if (err) std::fflush(stdout);
    std::fprintf(err ? stderr : stdout, "%s| %s\n", task.c_str(), text.c_str());
    text.clear();
  }
}

void JobWatcher::Flush() {
  DrawProgress(false);
  std::fflush(stdout);
  last_flush_ = SteadyClock::now();
}

void JobWatcher::DrawProgress(bool final) {
  if (!options_.live || counts_.total() == 0) return;
  const double secs = std::chrono::duration<double>(SteadyClock::now() - start_).count();
  const uint32_t done = counts_.succeeded() + counts_.failed() + counts_.other();
  std::printf("\r\033[K[%u/%u] %u ok, %u running, %u failed, %u pending  %.1f tasks/s",
              done, counts_.total(), counts_.succeeded(), counts_.running(),
              counts_.failed() + counts_.other(), counts_.pending(),
              secs > 0 ? done / secs : 0.0);
  if (final) std::fputs("\n", stdout);
  std::fflush(stdout);
}

}  // namespace drover::cli
