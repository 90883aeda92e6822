#include "backends/process/child_env.h"

#include <unistd.h>  // environ (declared with _GNU_SOURCE, which g++ defines)

namespace drover {
namespace {

bool HasKey(std::string_view entry, std::string_view key) {
  return entry.size() > key.size() && entry[key.size()] == '=' &&
         entry.compare(0, key.size(), key) == 0;
}

}  // namespace

ChildEnv::ChildEnv(Vars set, const std::vector<std::string_view>& drop) {
  if (set.empty() && drop.empty()) {
    envp_ = environ;
    return;
  }
  storage_.reserve(set.size());
  key_len_.reserve(set.size());
  for (const auto& [key, value] : set) {
    std::string entry = key + "=" + value;
    bool replaced = false;
    for (size_t i = 0; i < storage_.size(); ++i) {
      if (key_len_[i] == key.size() && storage_[i].compare(0, key.size(), key) == 0) {
        storage_[i] = std::move(entry);
        replaced = true;
        break;
      }
    }
    if (!replaced) {
      storage_.push_back(std::move(entry));
      key_len_.push_back(key.size());
    }
  }
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view inherited(*e);
    bool skip = false;
    for (std::string_view key : drop) skip = skip || HasKey(inherited, key);
    for (size_t i = 0; i < storage_.size() && !skip; ++i) {
      skip = HasKey(inherited, std::string_view(storage_[i]).substr(0, key_len_[i]));
    }
    if (!skip) pointers_.push_back(*e);
  }
  for (std::string& entry : storage_) pointers_.push_back(entry.data());
  pointers_.push_back(nullptr);
  envp_ = pointers_.data();
}

char* ChildEnv::MutableValue(std::string_view key) {
  for (size_t i = 0; i < storage_.size(); ++i) {
    if (HasKey(storage_[i], key)) return storage_[i].data() + key.size() + 1;
  }
  return nullptr;
}

}  // namespace drover
