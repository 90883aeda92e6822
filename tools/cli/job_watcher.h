// JobWatcher: how a client follows one job to its end, for `drover submit
// --wait/--follow`, `drover retry --wait` and `drover run` (whose embedded
// coordinator it talks to over inproc://, as the others do over TCP).
//
// It prints what happens meanwhile (task lines, task output, a live
// progress line) and keeps watching across coordinator restarts: when the
// Client says the coordinator is lost, it reconnects with a backoff and
// sends its WATCH again, up to `lost_timeout`.
//
// Not thread-safe: it uses the Client from the calling thread.
#ifndef DROVER_TOOLS_CLI_JOB_WATCHER_H_
#define DROVER_TOOLS_CLI_JOB_WATCHER_H_

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "core/base/clock.h"
#include "core/base/status.h"
#include "core/protocol/codec.h"
#include "tools/cli/client.h"

namespace drover::cli {

// Which task events print a line (render.h TaskLine) on stdout.
enum class TaskLines {
  kProblems,  // failed, cancelled, retry: `submit --wait`, `run` on a terminal
  kEnded,     // every task that ended or will retry: `run` without a terminal
  kAll,       // and every start: `submit --follow`
};

struct WatchOptions {
  TaskLines lines = TaskLines::kProblems;
  // Print the tasks' output, "TASK| line" (the WATCH asks for it).
  bool output = false;
  // Ask only for the events of problems (Watch.problems_only): set when
  // nothing else is printed (lines kProblems, no live line, no output).
  bool problems_only = false;
  // Redraw a progress line on stdout ("[3/10] 2 ok, ...") between task lines.
  bool live = false;
  // How long the coordinator may stay unreachable before Run gives up.
  Duration lost_timeout = std::chrono::minutes(5);
  // `drover run`: the count of Ctrl-C so far (a signal handler adds to it).
  // The first cancels the job, the second makes Run return kCancelled.
  const std::atomic<int>* interrupts = nullptr;
  // Before an ERROR's message on stderr.
  std::string error_prefix = "drover: the coordinator says: ";
};

class JobWatcher {
 public:
  JobWatcher(Client& client, std::string job_id, WatchOptions options);

  // Asks for the job's events (and output, with `options.output`). A
  // SUBMIT or RETRY-JOB with watch set did the same, without output.
  void SendWatch();

  // Watches until the job ends and returns its JOB-EVENT (after the last
  // output and, when live, the final progress line). Errors: the Client's
  // (a refused CURVE handshake), kUnavailable when the coordinator stayed
  // away for lost_timeout, kCancelled at a second Ctrl-C.
  Result<wire::JobEvent> Run();

 private:
  // The JOB-EVENT when `m` ends the job, else nullopt.
  std::optional<wire::JobEvent> Handle(const protocol::Message& m);
  // Sends CANCEL-JOB at the first Ctrl-C; true at the second.
  bool Interrupted();
  void PrintTask(const wire::TaskEvent& ev);
  // Output lines are prefixed with their task; a chunk's unfinished last
  // line waits for the next chunk of the same stream.
  void PrintOutput(const wire::Output& out, const std::string& bytes);
  void FlushOutput();
  // Redraws the live line and writes out what stdout holds.
  void Flush();
  // The live line: "[done/total] N ok, N running, N failed, N pending  R tasks/s".
  void DrawProgress(bool final);

  Client& client_;
  const std::string job_id_;
  const WatchOptions options_;
  bool cancel_sent_ = false;
  // Task lines and output are written out when no message is waiting, and
  // at least this often during a burst.
  static constexpr Duration kFlushEvery = std::chrono::milliseconds(100);
  std::chrono::steady_clock::time_point last_flush_ = std::chrono::steady_clock::now();
  std::map<std::string, std::string> partial_;  // unfinished output line by task/stream
  std::chrono::steady_clock::time_point start_;
  wire::Counts counts_;  // of the latest TASK-EVENT
  wire::TaskEvent event_;  // parsed into, message after message
  std::string line_;       // a task's line, built in place
};

}  // namespace drover::cli

#endif  // DROVER_TOOLS_CLI_JOB_WATCHER_H_
