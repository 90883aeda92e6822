#include "tools/cli/input_hashes.h"

#include <map>
#include <string>

#include "core/artifacts/sha256.h"
#include "core/protocol/codec.h"
// The same expansion as a task's `artifacts`, so that the two keys read
// alike: paths and globs within one component, a directory's every file.
#include "worker/artifact_files.h"

namespace drover::cli {

Status AddCacheInputs(const spec::JobSpec& spec, const std::filesystem::path& dir,
                      bool no_cache, wire::Submit* submit) {
  submit->set_no_cache(no_cache);
  // Each pattern once, with the first task that names it (for messages).
  std::map<std::string, std::pair<const spec::InputDecl*, const spec::TaskSpec*>>
      patterns;
  // `cache` and `inputs` are alike for a matrix's instances, and what
  // they share outlives this loop (an instance made for one step would not).
  spec.tasks.ForEachShared([&](const spec::TaskSpec& ts, spec::TaskList::Span) {
    if (!ts.cache) return;
    for (const spec::InputDecl& in : ts.inputs)
      patterns.emplace(in.pattern, std::pair(&in, &ts));
  });
  std::map<std::string, std::string> digests;  // by file path: each read once
  std::string errors;
  for (const auto& [pattern, decl] : patterns) {
    const auto& [in, ts] = decl;
    const std::string where = in->where.file + ":" + std::to_string(in->where.line) +
                              ":" + std::to_string(in->where.column) + ": input '" +
                              pattern + "' of task '" + ts->base_name + "'";
    auto files = FindArtifactFiles(dir, {pattern});
    if (!files.ok()) {
      errors += where +
                (files.status().code() == StatusCode::kNotFound
                     ? " matched no file in " + dir.string()
                     : ": " + files.status().message()) +
                "\n";
      continue;
    }
    wire::InputPattern* out = submit->add_inputs();
    out->set_pattern(pattern);
    for (const ArtifactFile& f : *files) {
      auto known = digests.find(f.file.string());
      if (known == digests.end()) {
        Result<std::string> sha = artifacts::Sha256File(f.file);
        if (!sha.ok()) {
          errors += where + ": " + sha.status().message() + "\n";
          continue;
        }
        known = digests.emplace(f.file.string(), *sha).first;
      }
      wire::InputFile* file = out->add_files();
      file->set_path(f.path);
      file->set_sha256(known->second);
    }
  }
  if (!errors.empty()) {
    errors.pop_back();
    return InvalidArgument(errors);
  }
  if (submit->ByteSizeLong() > protocol::Limits{}.max_body) {
    return InvalidArgument(
        spec.file +
        ": the spec with the hashes of its inputs is too large to submit "
        "(over 4 MiB)");
  }
  return Status::Ok();
}

}  // namespace drover::cli
