#include "core/artifacts/local_files.h"

namespace drover::artifacts {

void LocalFiles::Add(uint64_t attempt, const std::string& path,
                     std::filesystem::path file) {
  std::lock_guard<std::mutex> lock(mu_);
  files_[{attempt, path}] = std::move(file);
}

void LocalFiles::Forget(uint64_t attempt) {
  std::lock_guard<std::mutex> lock(mu_);
  files_.erase(files_.lower_bound({attempt, std::string()}),
               files_.lower_bound({attempt + 1, std::string()}));
}

std::optional<std::filesystem::path> LocalFiles::Find(uint64_t attempt,
                                                      const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find({attempt, path});
  if (it == files_.end()) return std::nullopt;
  return it->second;
}

}  // namespace drover::artifacts
