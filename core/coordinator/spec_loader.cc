#include "core/coordinator/spec_loader.h"

#include <pthread.h>
#include <unistd.h>

#include <cstdint>
#include <utility>

namespace drover {

SpecLoader::SpecLoader(spec::LoadOptions options, int wake_fd,
                       std::function<void()> before_load)
    : options_(std::move(options)),
      wake_fd_(wake_fd),
      before_load_(std::move(before_load)),
      thread_([this] { Run(); }) {}

SpecLoader::~SpecLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_.notify_all();
  thread_.join();
}

bool SpecLoader::Submit(Request r) {
  const size_t bytes = r.submit.spec_text().size();
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A spec bigger than the bound alone still goes when nothing waits.
    if (stop_ || (pending_bytes_ > 0 && pending_bytes_ + bytes > kMaxPendingBytes)) {
      return false;
    }
    pending_bytes_ += bytes;
    queue_.push_back(std::move(r));
  }
  work_.notify_one();
  return true;
}

bool SpecLoader::Busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loading_ || !queue_.empty() || !done_.empty();
}

std::vector<SpecLoader::Done> SpecLoader::TakeDone() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Done> out = std::move(done_);
  done_.clear();
  return out;
}

void SpecLoader::Run() {
  ::pthread_setname_np(::pthread_self(), "drover-spec");  // as `top -H` shows it
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Request r = std::move(queue_.front());
    queue_.pop_front();
    loading_ = true;
    lock.unlock();

    if (before_load_) before_load_();
    Done d{std::move(r), {}};
    d.loaded = spec::LoadString(d.request.submit.spec_text(),
                                d.request.submit.spec_file(), options_);
    if (d.loaded.ok() && !d.request.submit.resume()) {
      size_t carried = 0;  // a new job carries nothing over
      d.job = BuildJobState(std::move(*d.loaded.spec), d.request.job_id, {},
                            d.request.jitter_seed, &carried);
    }
    const size_t bytes = d.request.submit.spec_text().size();

    lock.lock();
    loading_ = false;
    pending_bytes_ -= bytes;
    done_.push_back(std::move(d));
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
}

}  // namespace drover
