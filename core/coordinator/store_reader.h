// StoreReader: answers the reads of jobs the coordinator does not run
// (STATUS, LOGS-REQUEST, a late WATCH), and reads the output files of the
// ended attempts of those it runs, on a thread of its own, with its own
// connection to the state file (store::Store::OpenReader).
//
// Those answers come from the store alone, and a big job's are costly: the
// STATUS of a finished job of 100,000 tasks reads all its rows, about
// 200 ms, and its LOGS found the task among them. The loop did that work
// itself, and every worker, job and client waited meanwhile; a client
// polling such a status kept the coordinator from dispatching
// (docs/benchmarks.md, session 26).
//
// One thread, first in first out. The loop hands over a parsed request
// (Submit), is woken through `wake_fd` when an answer is ready, and takes
// the answers in order (TakeDone). The loop holds a client's later
// messages until its read is answered, so each client has at most one
// read here and its replies keep its requests' order; the queue is
// bounded all the same (kMaxQueued), for many clients at once.
//
// A read sees what the loop has committed, as of when it starts: at least
// everything the loop had replied before the request came, since the loop
// replies only after it commits.
#ifndef DROVER_CORE_COORDINATOR_STORE_READER_H_
#define DROVER_CORE_COORDINATOR_STORE_READER_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/coordinator/job_state.h"
#include "core/coordinator/job_views.h"
#include "core/coordinator/live_status.h"
#include "core/protocol/codec.h"
#include "core/protocol/drover.pb.h"
#include "core/spec/job_spec.h"
#include "core/store/store.h"

namespace drover {

class StoreReader {
 public:
  // Reads waiting or being answered beyond which Submit refuses more.
  static constexpr size_t kMaxQueued = 4096;

  // kLogFiles: the output files of an ended attempt of a job the loop runs,
  // for the LOGS the loop has made (`head`). kRetry: what a RETRY-JOB of an
  // ended job needs, its record, its spec loaded again and its rows, and
  // the new job's state built from them (BuildJobState) with the id and
  // jitter seed the loop drew; the loop admits the new job. kResume: a
  // SUBMIT that resumes: its spec loaded, the latest job of its name and
  // that job's rows read, and the job's state built from them (or, with no
  // such job, a new job's with the id the loop drew).
  //
  // kLiveStatus: the STATUS of a job the loop runs, from the loop's
  // snapshot (live_status.h), rendered once the loop has committed turn
  // `after_turn` (Committed), the turn that took the snapshot.
  enum class Kind { kStatus, kLogs, kWatch, kLogFiles, kRetry, kResume, kLiveStatus };
  struct Read {
    std::string routing_id;  // whom to answer
    Kind kind = Kind::kStatus;
    wire::StatusRequest status;  // kStatus: job_id is a job's id or "" (a list)
    TaskPage page;               // kStatus
    wire::LogsRequest logs;      // kLogs
    std::string job_id;          // kWatch
    wire::Logs head;             // kLogFiles
    wire::RetryJob retry;        // kRetry
    protocol::PeerKey peer;      // kRetry: who asked
    std::string new_job_id;      // kRetry, kResume: the new job's id
    uint64_t jitter_seed = 0;    // kRetry, kResume: the new job's
    wire::Submit submit;         // kResume
    std::unique_ptr<LiveStatus> live;  // kLiveStatus
    uint64_t after_turn = 0;           // kLiveStatus
  };
  struct Answer {
    Read read;
    protocol::Command command = protocol::Command::kError;
    // kStatusReply: each job listed, as the bytes of a StatusReply that
    // holds it alone. A serialized StatusReply is its fields one after the
    // other, so these, one after the other, are the reply: the loop sends
    // them as they are, with a job that runs put in anew. They are built,
    // serialized and freed here (a reply of 3 MiB, 36,000 tasks, is about
    // 20 ms of work, its freeing included).
    struct Listed {
      std::string job_id;
      std::string bytes;
      bool live = false;  // a kLiveStatus: rendered from the loop's snapshot
    };
    std::vector<Listed> listed;
    wire::Logs logs;           // kLogs, with its two frames
    std::vector<std::string> frames;
    wire::JobEvent event;  // kJobEvent
    std::string error;     // kError
    // kRetry, when `error` is empty: the job retried, and the new job
    // (record.id, spec, plan and rows) with the indices of its tasks
    // carried over. kResume: the same, `old` the run resumed when
    // `resumes`; or the spec's errors.
    store::JobRecord old;
    bool resumes = false;
    std::unique_ptr<JobState> job;
    size_t carried = 0;
    std::vector<std::string> spec_errors;  // kResume
  };

  // `store` is the thread's own connection (Store::OpenReader). `wake_fd`
  // (an eventfd the loop waits on) is written once an answer is ready.
  // `before_read` and `after_read`, when set, run on the reader's thread
  // before each read and after it, before its answer is handed over (tests
  // hold a read, or its answer, with them).
  StoreReader(std::unique_ptr<store::Store> store, spec::LoadOptions options, int wake_fd,
              std::function<void()> before_read = nullptr,
              std::function<void()> after_read = nullptr);
  // Stops the thread (a read in progress ends first); answers not taken
  // are dropped, as from a coordinator that stopped.
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  // Queues `r`; false (and nothing queued) when kMaxQueued reads wait.
  bool Submit(Read r);
  // The loop has committed turn `turn` (or found it could not): the
  // kLiveStatus reads of that turn may be rendered.
  void Committed(uint64_t turn);
  // The answers ready since the last call, in the order of their Submits.
  std::vector<Answer> TakeDone();

 private:
  void Run();
  Answer Serve(Read r);
  void ServeStatus(Answer& a);
  // Adds `js` to a.listed; its size in bytes.
  static size_t List(Answer& a, wire::JobStatus js);
  void ServeRetry(Answer& a);
  void ServeResume(Answer& a);

  const std::unique_ptr<store::Store> store_;  // used by the thread only
  const spec::LoadOptions options_;
  const int wake_fd_;
  const std::function<void()> before_read_;
  const std::function<void()> after_read_;
  std::mutex mu_;
  std::condition_variable work_;
  std::deque<Read> queue_;
  std::vector<Answer> done_;
  size_t reading_ = 0;  // 1 while the thread answers one
  bool stop_ = false;
  // The last turn the loop committed (Committed), and whether the thread
  // waits for a later one: the loop, which commits thousands of times a
  // second, takes the mutex and notifies only then (a notify each turn
  // was 1.5% of its time). Sequentially consistent, so that one of the
  // two sides sees the other's store.
  std::atomic<uint64_t> committed_{0};
  std::atomic<bool> awaiting_turn_{false};
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_STORE_READER_H_
