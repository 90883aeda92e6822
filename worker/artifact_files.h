// The files a task's `artifacts` patterns name in its working directory
// (docs/spec.md, "artifacts"). Internal to worker/.
#ifndef DROVER_WORKER_ARTIFACT_FILES_H_
#define DROVER_WORKER_ARTIFACT_FILES_H_

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/base/status.h"

namespace drover {

// One file to upload: its path relative to the working directory (the
// artifact's name) and where it is.
struct ArtifactFile {
  std::string path;
  std::filesystem::path file;
  // The file is the attempt's own (in its fresh working directory, removed
  // when it ends), so once uploaded it may become the worker's cached copy
  // (a hard link, made read-only). Never a file of a task's own `cwd`.
  bool own = false;
};

// Expands `patterns` (paths or globs: * ? [..] within one component)
// relative to `dir`. A match that is a directory gives every regular file
// under it (symbolic links to directories are not followed). The result
// is sorted by path, without duplicates. Errors (kNotFound, kInvalidArgument)
// name the pattern: one that matches nothing, a match outside `dir`, more
// than artifacts::kMaxFilesPerAttempt files.
Result<std::vector<ArtifactFile>> FindArtifactFiles(
    const std::filesystem::path& dir, const std::vector<std::string>& patterns);

}  // namespace drover

#endif  // DROVER_WORKER_ARTIFACT_FILES_H_
