#include "core/spec/template.h"

#include <algorithm>

#include "core/spec/outputs.h"
#include "core/spec/text.h"

namespace drover::spec::internal {

Template Template::Literal(std::string text) {
  Template t;
  t.parts_.front() = std::move(text);
  return t;
}

Template Template::Compile(std::string_view text,
                           const std::vector<std::string>& keys, bool has_matrix,
                           bool lenient, std::string_view task,
                           std::vector<std::string>* errors, std::vector<OutputRef>* refs,
                           Pos where) {
  static constexpr std::string_view kOpen = "${matrix.";
  Template t;
  size_t i = 0;
  while (true) {
    size_t at = text.find(kOpen, i);
    const size_t tasks_at =
        refs != nullptr ? text.find(kTasksRefOpen, i) : std::string_view::npos;
    if (tasks_at < at) {
      // An upstream output: a hole after the matrix keys.
      t.parts_.back().append(text.substr(i, tasks_at - i));
      size_t length = 0;
      Result<OutputRef> ref = ParseOutputRef(text.substr(tasks_at), &length);
      if (!ref.ok()) {
        errors->push_back(ref.status().message() + " in task '" + std::string(task) +
                          "'");
        t.parts_.back().append(text.substr(tasks_at, length ? length : text.size()));
        if (length == 0) break;
        i = tasks_at + length;
        continue;
      }
      size_t k = 0;
      while (k < refs->size() && (*refs)[k].text != ref->text) ++k;
      if (k == refs->size()) {
        ref->where = where;
        refs->push_back(std::move(*ref));
      }
      t.refs_.push_back(static_cast<uint32_t>(keys.size() + k));
      t.parts_.emplace_back();
      i = tasks_at + length;
      continue;
    }
    if (at == std::string_view::npos) {
      t.parts_.back().append(text.substr(i));
      break;
    }
    t.parts_.back().append(text.substr(i, at - i));
    const size_t key_start = at + kOpen.size();
    const size_t close = text.find('}', key_start);
    if (close == std::string_view::npos) {
      errors->push_back("unterminated '${matrix.' in task '" + std::string(task) +
                        "' (write ${matrix.KEY})");
      t.parts_.back().append(text.substr(at));
      break;
    }
    const std::string_view key = text.substr(key_start, close - key_start);
    const auto found = std::find(keys.begin(), keys.end(), key);
    if (found != keys.end()) {
      t.refs_.push_back(static_cast<uint32_t>(found - keys.begin()));
      t.parts_.emplace_back();
    } else {
      const std::string ref = Quoted(text.substr(at, close + 1 - at));
      if (!has_matrix) {
        errors->push_back(ref + " in task '" + std::string(task) +
                          "': the task has no matrix");
      } else if (!lenient) {
        std::vector<std::string_view> candidates(keys.begin(), keys.end());
        errors->push_back(ref + " in task '" + std::string(task) +
                          "': its matrix has no key " + Quoted(key) +
                          DidYouMean(key, candidates));
      }
      t.parts_.back().append(text.substr(at, close + 1 - at));
    }
    i = close + 1;
  }
  return t;
}

std::string Template::Render(const std::vector<const std::string*>& values) const {
  size_t size = 0;
  for (const std::string& part : parts_) size += part.size();
  for (uint32_t ref : refs_) size += values[ref]->size();
  std::string out;
  out.reserve(size);
  for (size_t k = 0; k < refs_.size(); ++k) {
    out += parts_[k];
    out += *values[refs_[k]];
  }
  out += parts_.back();
  return out;
}

}  // namespace drover::spec::internal
