// The worker's side of task outputs (docs/spec.md, "Outputs"): the file a
// spawn task writes as $DROVER_OUTPUT, and what every successful attempt's
// RESULT carries in `outputs`.
#ifndef DROVER_WORKER_OUTPUTS_H_
#define DROVER_WORKER_OUTPUTS_H_

#include <filesystem>
#include <string_view>

#include "core/base/outcome.h"
#include "core/base/outputs.h"
#include "core/base/status.h"

namespace drover {

// Parses the text of a $DROVER_OUTPUT file, GitHub Actions' syntax:
//   KEY=VALUE              one line; VALUE may be empty and hold '='
//   KEY<<DELIM             a multi-line value: the lines up to one that is
//   line 1                 exactly DELIM, joined with "\n" (no newline
//   line 2                 after the last)
//   DELIM
// Empty lines are skipped; a key written twice keeps its last value. A line
// with '=' before any "<<" is KEY=VALUE. Fails with kInvalidArgument naming
// the 1-based line: a key that is not 1-128 of [A-Za-z0-9_-], a line that
// is neither form, an empty delimiter, an unterminated multi-line value.
Result<Outputs> ParseOutputFile(std::string_view text);

// What a finished attempt hands on, into `outcome->outputs` when it
// succeeded: the KEY=VALUE lines of `file` (its $DROVER_OUTPUT; absent or
// empty: none) and its `result_json` as output `result` (the decoded
// string when the result is a JSON string). A malformed file or outputs
// past the caps (kMaxOutputBytes, kMaxOutputKeys) turn the success into
// reason kBadOutputs with the reason. `file` is removed either way, except
// with `keep_empty`: a file that is empty, regular, not a symbolic link and
// has no other name is then left in place, and the function returns true
// (the worker renames it for its next attempt: OutputsFiles).
bool CollectOutputs(const std::filesystem::path& file, AttemptOutcome* outcome,
                    bool keep_empty = false);

}  // namespace drover

#endif  // DROVER_WORKER_OUTPUTS_H_
