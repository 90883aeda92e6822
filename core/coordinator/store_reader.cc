#include "core/coordinator/store_reader.h"

#include <pthread.h>
#include <unistd.h>

#include <cstdint>
#include <utility>

#include "core/coordinator/stored_status.h"

namespace drover {

using protocol::Command;

StoreReader::StoreReader(std::unique_ptr<store::Store> store, spec::LoadOptions options,
                         int wake_fd, std::function<void()> before_read,
                         std::function<void()> after_read)
    : store_(std::move(store)),
      options_(std::move(options)),
      wake_fd_(wake_fd),
      before_read_(std::move(before_read)),
      after_read_(std::move(after_read)),
      thread_([this] { Run(); }) {}

StoreReader::~StoreReader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_.notify_all();
  thread_.join();
}

bool StoreReader::Submit(Read r) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || queue_.size() + reading_ + done_.size() >= kMaxQueued) return false;
    queue_.push_back(std::move(r));
  }
  work_.notify_one();
  return true;
}

void StoreReader::Committed(uint64_t turn) {
  committed_.store(turn);
  if (!awaiting_turn_.load()) return;
  // Under the mutex: the thread is then either before its predicate,
  // which sees `turn`, or asleep, and woken.
  std::lock_guard<std::mutex> lock(mu_);
  work_.notify_all();
}

std::vector<StoreReader::Answer> StoreReader::TakeDone() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Answer> out = std::move(done_);
  done_.clear();
  return out;
}

void StoreReader::Run() {
  ::pthread_setname_np(::pthread_self(), "drover-reads");  // as `top -H` shows it
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Read r = std::move(queue_.front());
    queue_.pop_front();
    reading_ = 1;
    // A running job's status reads the rows its turn writes.
    if (committed_.load() < r.after_turn) {
      awaiting_turn_.store(true);
      work_.wait(lock, [&] { return stop_ || committed_.load() >= r.after_turn; });
      awaiting_turn_.store(false);
    }
    if (stop_) return;
    lock.unlock();

    if (before_read_) before_read_();
    Answer a = Serve(std::move(r));
    if (after_read_) after_read_();

    lock.lock();
    reading_ = 0;
    done_.push_back(std::move(a));
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
}

StoreReader::Answer StoreReader::Serve(Read r) {
  Answer a;
  a.read = std::move(r);
  switch (a.read.kind) {
    case Kind::kStatus:
      ServeStatus(a);
      break;
    case Kind::kLogs: {
      StoredLogs l = LogsOfStoredJob(*store_, a.read.logs);
      if (!l.error.empty()) {
        a.error = std::move(l.error);
        break;
      }
      a.command = Command::kLogs;
      a.logs = std::move(l.logs);
      a.frames = std::move(l.frames);
      break;
    }
    case Kind::kLogFiles: {
      const wire::Logs& head = a.read.head;
      a.command = Command::kLogs;
      a.logs = head;
      for (const bool err : {false, true}) {
        a.frames.push_back(
            ReadLog(store_->LogPath(head.job_id(), head.task(), head.attempt(), err)));
      }
      break;
    }
    case Kind::kResume:
      ServeResume(a);
      break;
    case Kind::kLiveStatus: {
      wire::JobStatus js;
      RenderLiveStatus(*store_, *a.read.live, &js);
      List(a, std::move(js));
      a.listed.back().live = true;
      a.read.live.reset();  // freed here, not on the loop
      a.command = Command::kStatusReply;
      break;
    }
    case Kind::kRetry:
      ServeRetry(a);
      break;
    case Kind::kWatch: {
      StoredEvent e = EventOfStoredJob(*store_, a.read.job_id);
      if (!e.error.empty()) {
        a.error = std::move(e.error);
        break;
      }
      a.command = Command::kJobEvent;
      a.event = std::move(e.event);
      break;
    }
  }
  return a;
}

size_t StoreReader::List(Answer& a, wire::JobStatus js) {
  wire::StatusReply alone;
  *alone.add_jobs() = std::move(js);
  Answer::Listed& l = a.listed.emplace_back();
  l.job_id = alone.jobs(0).job_id();
  alone.SerializeToString(&l.bytes);
  return l.bytes.size();
}

void StoreReader::ServeStatus(Answer& a) {
  const wire::StatusRequest& req = a.read.status;
  if (!req.job_id().empty()) {
    auto found = store_->GetJob(req.job_id());
    if (!found.ok()) return void(a.error = found.status().ToString());
    if (!*found) return void(a.error = "no job " + req.job_id());
    List(a, StoredJobStatus(*store_, **found, req.tasks(), a.read.page, req.groups(),
                            options_));
    a.command = Command::kStatusReply;
    return;
  }
  store::Store::JobQuery query;
  query.state = req.state();
  query.name = req.name();
  query.since_ms = req.since_unix_ms();
  query.limit = req.limit() ? req.limit() : kDefaultStatusLimit;
  auto recent = store_->FindJobs(query);
  if (!recent.ok()) return void(a.error = recent.status().ToString());
  size_t bytes = 0;
  for (const auto& record : *recent) {
    if (bytes >= kMaxStatusBytes) break;
    bytes += List(a, StoredJobStatus(*store_, record, req.tasks(), a.read.page,
                                     /*with_groups=*/false, options_));
  }
  a.command = Command::kStatusReply;
}

void StoreReader::ServeRetry(Answer& a) {
  const std::string& id = a.read.retry.job_id();
  auto found = store_->GetJob(id);
  if (!found.ok()) return void(a.error = found.status().ToString());
  if (!*found) return void(a.error = "no job " + id);
  a.old = std::move(**found);
  auto loaded = spec::LoadString(a.old.spec_text, a.old.spec_file, options_);
  if (!loaded.ok()) {
    a.error = "the spec of job " + a.old.id +
              " no longer loads: " + loaded.errors.front().ToString();
    return;
  }
  auto rows = store_->Tasks(a.old.id);
  if (!rows.ok()) return void(a.error = rows.status().ToString());
  a.job = BuildJobState(std::move(*loaded.spec), a.read.new_job_id, std::move(*rows),
                        a.read.jitter_seed, &a.carried);
  a.command = Command::kSubmitted;  // the loop admits the job and answers
}

void StoreReader::ServeResume(Answer& a) {
  const wire::Submit& submit = a.read.submit;
  auto loaded = spec::LoadString(submit.spec_text(), submit.spec_file(), options_);
  a.command = Command::kSubmitted;  // the loop admits the job, or says why not
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) a.spec_errors.push_back(e.ToString());
    return;
  }
  auto latest = store_->LatestJob(loaded.spec->name);
  if (!latest.ok()) {
    a.command = Command::kError;
    a.error = latest.status().ToString();
    return;
  }
  std::vector<store::TaskRecord> rows;
  if (*latest) {
    a.old = std::move(**latest);
    a.resumes = true;
    auto found = store_->Tasks(a.old.id);
    if (!found.ok()) {
      a.command = Command::kError;
      a.error = found.status().ToString();
      return;
    }
    rows = std::move(*found);
  }
  a.job = BuildJobState(std::move(*loaded.spec), a.resumes ? a.old.id : a.read.new_job_id,
                        std::move(rows), a.read.jitter_seed, &a.carried);
}

}  // namespace drover
