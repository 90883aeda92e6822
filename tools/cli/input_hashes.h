// The client's part of caching (docs/spec.md, "Caching"): `drover run` and
// `drover submit` hash the local files the `inputs` of a spec's `cache:
// true` tasks name and send the hashes with SUBMIT (docs/protocol.md,
// Submit.inputs), because the coordinator may run on another host.
#ifndef DROVER_TOOLS_CLI_INPUT_HASHES_H_
#define DROVER_TOOLS_CLI_INPUT_HASHES_H_

#include <filesystem>

#include "core/base/status.h"
#include "core/protocol/drover.pb.h"
#include "core/spec/job_spec.h"

namespace drover::cli {

// Sets submit->no_cache and fills submit->inputs: for each distinct
// pattern of the `inputs` of `spec`'s tasks with `cache: true`, the
// files it matches under `dir` (the rules of `artifacts` paths: a
// directory gives every file under it) with their sha256, each file read
// once. kInvalidArgument with one "FILE:LINE:COL: ..." line per pattern
// that matches no file or cannot be read, or when the SUBMIT would pass
// the 4 MiB body limit.
Status AddCacheInputs(const spec::JobSpec& spec, const std::filesystem::path& dir,
                      bool no_cache, wire::Submit* submit);

}  // namespace drover::cli

#endif  // DROVER_TOOLS_CLI_INPUT_HASHES_H_
