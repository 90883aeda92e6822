// A real Worker (worker/worker.h) run by a test: made and started on the
// test's thread, its loop on a thread of its own. Stop() (and the
// destructor) stops the loop, joins the thread and destroys the worker,
// whose backends stop and reap everything they started, so a test that
// fails an assertion still leaves no process behind.
#ifndef DROVER_TESTS_INTEGRATION_WORKER_THREAD_H_
#define DROVER_TESTS_INTEGRATION_WORKER_THREAD_H_

#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "backends/backend.h"
#include "core/base/clock.h"
#include "worker/worker.h"

namespace drover::testing {

class WorkerThread {
 public:
  WorkerThread() = default;
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;
  ~WorkerThread() { Stop(); }

  // Makes the worker and calls its Start(); false (with a test failure
  // naming the error) when that fails.
  bool Start(zmq::context_t& context, const WorkerOptions& options,
             const BackendRegistry& registry, const Clock& clock) {
    worker_ = std::make_unique<Worker>(context, options, registry, clock);
    const Status s = worker_->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) worker_.reset();
    return s.ok();
  }
  // Runs its loop on a thread of its own (after a successful Start).
  void Run() {
    thread_ = std::thread([w = worker_.get()] { (void)w->Run(); });
  }
  void Stop() {
    if (!worker_) return;
    worker_->Stop();
    if (thread_.joinable()) thread_.join();
    worker_.reset();
  }
  Worker* operator->() const { return worker_.get(); }
  explicit operator bool() const { return worker_ != nullptr; }

 private:
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
};

}  // namespace drover::testing

#endif  // DROVER_TESTS_INTEGRATION_WORKER_THREAD_H_
