#include "core/spec/raw_job.h"

#include <algorithm>

#include "core/spec/text.h"

namespace drover::spec::internal {

void ErrorSink::Add(Pos where, std::string message) {
  SpecError error;
  error.where.file = file_;
  error.where.line = where.line;
  error.where.column = where.column;
  error.message = std::move(message);
  errors_.push_back(std::move(error));
}

std::vector<SpecError> ErrorSink::Take() {
  std::stable_sort(errors_.begin(), errors_.end(),
                   [](const SpecError& a, const SpecError& b) {
                     if (a.where.line != b.where.line) return a.where.line < b.where.line;
                     return a.where.column < b.where.column;
                   });
  // A value reached twice through a YAML alias would report its error
  // twice, at the same place.
  errors_.erase(std::unique(errors_.begin(), errors_.end(),
                            [](const SpecError& a, const SpecError& b) {
                              return a.where.line == b.where.line &&
                                     a.where.column == b.where.column &&
                                     a.message == b.message;
                            }),
                errors_.end());
  return std::move(errors_);
}

}  // namespace drover::spec::internal
