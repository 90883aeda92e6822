// SpecLoader: loads the specs of SUBMITs on a thread of its own, so that
// the coordinator's loop keeps dispatching, recording results and answering
// while a big spec is read. A spec of 100,000 matrix values takes yaml-cpp
// about 150 ms, one of a million values more than a second; the loop did
// that work itself, and every job, worker and client waited for it
// (docs/benchmarks.md, session 25).
//
// One thread, first in first out: specs are loaded, and their jobs
// admitted by the loop, in the order the SUBMITs arrived. The loop hands
// over the parsed SUBMIT (Submit), is woken through `wake_fd` when a load
// ends, and takes the finished loads in order (TakeDone). What waits is
// bounded (kMaxPendingBytes of spec text): past it, Submit refuses, and the
// loop answers ERROR at once rather than wait or hold without limit what
// peers send. (The loop holds a client's later messages until its SUBMIT
// is admitted, so a client has one spec here at most.)
//
// For a SUBMIT that does not resume (whose job needs nothing from the
// store), the thread also builds the job's state: its plan, queues and
// rows (InitJobState), 12 ms of a 100,000-task job that the loop spent
// before. The loop draws the job's id and jitter seed when it queues the
// SUBMIT, so the state is what the loop would have built.
//
// Plain data in and out, no sockets and no store: the loop replies and
// admits (core/coordinator/client_api.cc).
#ifndef DROVER_CORE_COORDINATOR_SPEC_LOADER_H_
#define DROVER_CORE_COORDINATOR_SPEC_LOADER_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/coordinator/job_state.h"
#include "core/protocol/codec.h"
#include "core/protocol/drover.pb.h"
#include "core/spec/job_spec.h"

namespace drover {

class SpecLoader {
 public:
  // Spec text queued or being loaded beyond which Submit refuses.
  static constexpr size_t kMaxPendingBytes = size_t{64} << 20;

  struct Request {
    std::string routing_id;  // whom to answer
    protocol::PeerKey peer;  // who submitted (the job's submitter_key/_name)
    wire::Submit submit;
    // The new job's id and jitter seed, drawn by the loop: the state of a
    // job that does not resume is built with them here.
    std::string job_id;
    uint64_t jitter_seed = 0;
  };
  struct Done {
    Request request;
    // Its errors when the spec does not load; its spec is moved into `job`
    // when the job's state was built here.
    spec::LoadResult loaded;
    // The job (record.id, spec, plan, rows) as InitJobState builds it for a
    // new job, when the spec loaded and the SUBMIT does not resume; null
    // otherwise (the loop builds it).
    std::unique_ptr<JobState> job;
  };

  // `wake_fd` (an eventfd the loop waits on) is written once a load ends.
  // `before_load`, when set, runs on the loader's thread before each load
  // (tests hold a load with it).
  SpecLoader(spec::LoadOptions options, int wake_fd,
             std::function<void()> before_load = nullptr);
  // Stops the thread; loads not taken are dropped (their clients get no
  // SUBMITTED, as from a coordinator that stopped).
  ~SpecLoader();
  SpecLoader(const SpecLoader&) = delete;
  SpecLoader& operator=(const SpecLoader&) = delete;

  // Queues `r`'s spec to be loaded; false (nothing queued) when that would
  // take the spec text queued past kMaxPendingBytes, unless none is.
  bool Submit(Request r);
  // Whether a spec is queued, being loaded, or loaded and not yet taken:
  // a SUBMIT the loop would otherwise admit at once must then queue too,
  // behind the earlier ones.
  bool Busy() const;
  // The loads that ended since the last call, in the order they were
  // submitted.
  std::vector<Done> TakeDone();

 private:
  void Run();

  const spec::LoadOptions options_;
  const int wake_fd_;
  const std::function<void()> before_load_;
  mutable std::mutex mu_;
  std::condition_variable work_;  // the thread waits for requests (or stop_)
  std::deque<Request> queue_;
  std::vector<Done> done_;
  size_t pending_bytes_ = 0;  // spec text queued or being loaded
  bool loading_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace drover

#endif  // DROVER_CORE_COORDINATOR_SPEC_LOADER_H_
