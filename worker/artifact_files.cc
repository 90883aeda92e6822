#include "worker/artifact_files.h"

#include <glob.h>

#include <algorithm>
#include <map>
#include <system_error>

#include "core/artifacts/transfer.h"

namespace drover {
namespace fs = std::filesystem;
namespace {

// `text` with glob(3)'s special characters escaped, so that a working
// directory named "a[1]" is taken literally.
std::string EscapeGlob(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

Result<std::vector<ArtifactFile>> FindArtifactFiles(
    const fs::path& dir, const std::vector<std::string>& patterns) {
  std::error_code ec;
  const fs::path base = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  std::map<std::string, fs::path> found;
  auto add = [&](const fs::path& file) -> Status {
    const fs::path rel = file.lexically_relative(base);
    const std::string name = rel.generic_string();
    if (auto bad = artifacts::BadArtifactPath(name)) {
      return InvalidArgument(file.string() + " is not inside the working directory " +
                             base.string());
    }
    found.emplace(name, file);
    if (found.size() > artifacts::kMaxFilesPerAttempt) {
      return InvalidArgument("the artifacts patterns match more than " +
                             std::to_string(artifacts::kMaxFilesPerAttempt) + " files");
    }
    return Status::Ok();
  };
  for (const std::string& pattern : patterns) {
    if (auto bad = artifacts::BadArtifactPath(pattern)) return InvalidArgument(*bad);
    const std::string full = EscapeGlob(base.string()) + "/" + pattern;
    glob_t g{};
    const int rc = ::glob(full.c_str(), GLOB_NOSORT, nullptr, &g);
    std::vector<fs::path> matches;
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) matches.emplace_back(g.gl_pathv[i]);
    }
    ::globfree(&g);
    if (matches.empty()) {
      return NotFound("artifact '" + pattern + "' matched no file in " + base.string());
    }
    for (const fs::path& m : matches) {
      if (fs::is_directory(m, ec)) {
        for (auto it = fs::recursive_directory_iterator(m, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
          if (it->is_regular_file(ec)) DROVER_RETURN_IF_ERROR(add(it->path()));
        }
      } else if (fs::is_regular_file(m, ec)) {
        DROVER_RETURN_IF_ERROR(add(m));
      }
    }
  }
  std::vector<ArtifactFile> out;
  out.reserve(found.size());
  for (auto& [path, file] : found) out.push_back(ArtifactFile{path, std::move(file)});
  return out;
}

}  // namespace drover
