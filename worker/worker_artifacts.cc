// Worker::Loop, artifacts: the attempt's own directories, the staging of
// its inputs before it starts and the upload of its artifacts after it
// succeeded, before its RESULT (docs/protocol.md, "Artifact transfer";
// docs/spec.md, "artifacts"). The transfers themselves are
// ArtifactTransfers'.
#include <spdlog/spdlog.h>

#include <system_error>

#include "worker/artifact_files.h"
#include "worker/worker_loop.h"

namespace drover {
namespace fs = std::filesystem;

void Worker::Loop::PrepareArtifacts(uint64_t id, const wire::Dispatch& d, TaskAttempt& a,
                                    std::function<void(TaskAttempt)> start) {
  Running& r = running_[id];
  r.artifacts.assign(d.artifacts().begin(), d.artifacts().end());
  const std::string stem = std::to_string(id);
  std::error_code ec;
  const fs::path spool = fs::absolute(options_.spool_dir, ec);
  // A fresh directory per attempt, so that two attempts on one worker, or
  // a retry and the files of the attempt before it, never meet.
  r.work_dir = spool / "work" / stem;
  fs::remove_all(r.work_dir, ec);
  fs::create_directories(r.work_dir, ec);
  if (ec) {
    AttemptOutcome o;
    o.reason = FailureReason::kArtifactFailed;
    o.message = "cannot create the attempt's directory " + r.work_dir.string() + ": " +
                ec.message();
    return Complete(id, std::move(o));
  }
  a.work_dir = r.work_dir;
  r.artifacts_dir = d.artifacts_dir().empty() ? r.work_dir : fs::path(d.artifacts_dir());
  if (d.inputs_size() == 0) return start(std::move(a));

  r.inputs_dir = spool / "inputs" / stem;
  fs::remove_all(r.inputs_dir, ec);
  fs::create_directories(r.inputs_dir, ec);
  a.env.emplace_back("DROVER_INPUTS", r.inputs_dir.string());
  r.staging = true;
  std::vector<wire::ArtifactRef> inputs(d.inputs().begin(), d.inputs().end());
  auto held = std::make_shared<TaskAttempt>(std::move(a));
  transfers_->Stage(id, std::move(inputs), r.inputs_dir,
                    [this, id, held, start = std::move(start)](Status s) {
                      auto it = running_.find(id);
                      if (it == running_.end()) return;
                      it->second.staging = false;
                      if (!s.ok()) {
                        AttemptOutcome o;
                        o.reason = FailureReason::kArtifactFailed;
                        o.message = "staging inputs: " + s.message();
                        return Complete(id, std::move(o));
                      }
                      start(std::move(*held));
                    });
}

bool Worker::Loop::UploadArtifacts(uint64_t id, Running& r, AttemptOutcome& outcome) {
  if (r.uploaded || r.artifacts.empty() || !outcome.ok()) return false;
  r.uploaded = true;
  auto files = FindArtifactFiles(r.artifacts_dir, r.artifacts);
  if (!files.ok()) {
    outcome.reason = FailureReason::kArtifactFailed;
    outcome.message = files.status().message();
    return false;
  }
  if (r.artifacts_dir == r.work_dir) {
    for (ArtifactFile& f : *files) f.own = true;
  }
  r.uploading = true;
  transfers_->Upload(id, std::move(files.value()), [this, id, outcome](Status s) mutable {
    auto it = running_.find(id);
    if (it == running_.end()) return;
    it->second.uploading = false;
    if (!s.ok()) {
      outcome.reason = FailureReason::kArtifactFailed;
      outcome.message = "storing artifacts: " + s.message();
      spdlog::warn("worker {}: attempt {}: {}", options_.name, id, outcome.message);
    }
    Complete(id, std::move(outcome));
  });
  return true;
}

bool Worker::Loop::CancelTransfers(uint64_t id, Running& r) {
  if (!r.staging && !r.uploading) return false;
  transfers_->Cancel(id);
  r.staging = r.uploading = false;
  r.uploaded = true;
  AttemptOutcome o;
  o.reason = FailureReason::kCancelled;
  o.message = "cancelled while its artifacts were being transferred";
  Complete(id, std::move(o));
  return true;
}

void Worker::Loop::RemoveAttemptDirs(const Running& r) {
  std::error_code ec;
  if (!r.work_dir.empty()) fs::remove_all(r.work_dir, ec);
  if (!r.inputs_dir.empty()) fs::remove_all(r.inputs_dir, ec);
}

}  // namespace drover
