// The echo backend's worker side: one thread that prints each attempt's
// text into its stdout file and finishes it.
#include "tests/backends/echo/echo_backend.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "tests/backends/echo/echo.pb.h"

namespace drover::echo {
namespace {

class EchoBackend : public Backend {
 public:
  explicit EchoBackend(const BackendConfig& config) : slots_(config.slots) {}
  ~EchoBackend() override { Shutdown(Duration::zero()); }

  Status Start(BackendEvents* events) override {
    events_ = events;
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  int Capacity() const override { return slots_; }

  Status Submit(TaskAttempt attempt) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return FailedPrecondition("the echo backend is shut down");
    queue_.push_back(std::move(attempt));
    wake_.notify_one();
    return Status::Ok();
  }

  // A queued attempt ends as cancelled; a running one is too quick to stop.
  void Cancel(uint64_t attempt_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (it->attempt_id != attempt_id) continue;
      queue_.erase(it);
      events_->OnFinished(attempt_id, AttemptFailure(FailureReason::kCancelled, "cancelled"));
      return;
    }
  }

  void Shutdown(Duration) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
      for (const TaskAttempt& a : queue_) {
        events_->OnFinished(a.attempt_id, AttemptFailure(FailureReason::kCancelled,
                                                         "the worker is shutting down"));
      }
      queue_.clear();
      wake_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      TaskAttempt attempt = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      events_->OnStarted(attempt.attempt_id, 0);
      const auto started = std::chrono::steady_clock::now();
      AttemptOutcome outcome = Echo(attempt);
      outcome.wall = std::chrono::steady_clock::now() - started;
      events_->OnFinished(attempt.attempt_id, std::move(outcome));
      lock.lock();
    }
  }

  // Decodes the payload, writes the text and a newline to the stdout file;
  // the result is {"echo": TEXT, "env": [names of attempt.env]}.
  static AttemptOutcome Echo(const TaskAttempt& attempt) {
    EchoTask task;
    if (!task.ParseFromString(attempt.payload)) {
      return AttemptFailure(FailureReason::kLaunchFailed,
                            "the payload is not a drover.echo.EchoTask");
    }
    const std::string text = attempt.ExpandServiceRefs(task.text()) + "\n";
    std::FILE* out = std::fopen(attempt.stdout_path.c_str(), "wb");
    if (out == nullptr) {
      return AttemptFailure(FailureReason::kInternal,
                            "cannot write " + attempt.stdout_path);
    }
    const size_t written = std::fwrite(text.data(), 1, text.size(), out);
    std::fclose(out);
    AttemptOutcome outcome;
    outcome.out.bytes = written;
    // The names of the environment the worker gave the attempt, so that
    // tests can see what a backend that starts no process receives.
    nlohmann::json env = nlohmann::json::array();
    for (const auto& [name, value] : attempt.env) env.push_back(name);
    outcome.result_json = nlohmann::json{{"echo", task.text()}, {"env", env}}.dump();
    return outcome;
  }

  const int slots_;
  BackendEvents* events_ = nullptr;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<TaskAttempt> queue_;  // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<Backend>> MakeEchoBackend(const BackendConfig& config) {
  return std::unique_ptr<Backend>(std::make_unique<EchoBackend>(config));
}

}  // namespace drover::echo
