// YamlReader: a task's `inputs` (docs/spec.md, "Caching"), the local files
// whose content is part of its cache key. Only their form is checked here:
// the client that submits the job expands and hashes them (tools/cli/
// input_hashes.h), since the coordinator may not see its files.
#include "core/spec/text.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec::internal {
namespace {

// The most patterns one task may list, and the longest one; the files they
// match are bounded where they are expanded.
constexpr size_t kMaxInputPatterns = 1000;
constexpr size_t kMaxInputPathBytes = 1024;

// Why `pattern` cannot be an input, or "" when it can. The rules are the
// ones of `artifacts` paths: relative, without "." or ".." components, so
// that a key means the same files wherever the job is submitted from.
std::string BadInputPattern(std::string_view pattern) {
  if (pattern.empty()) return "an input path cannot be empty";
  if (pattern.size() > kMaxInputPathBytes) {
    return "an input path is at most " + std::to_string(kMaxInputPathBytes) + " bytes";
  }
  if (pattern.find('\0') != std::string_view::npos)
    return "an input path cannot contain NUL";
  if (pattern.front() == '/') {
    return "input " + Quoted(pattern) +
           " is absolute: inputs are relative to the directory drover is run from";
  }
  size_t start = 0;
  while (start <= pattern.size()) {
    size_t end = pattern.find('/', start);
    if (end == std::string_view::npos) end = pattern.size();
    const std::string_view part = pattern.substr(start, end - start);
    if (part == "..") {
      return "input " + Quoted(pattern) +
             " leaves the directory drover is run from ('..')";
    }
    if (part == "." || part.empty()) {
      return "input " + Quoted(pattern) + " has an empty or '.' component";
    }
    start = end + 1;
  }
  return "";
}

}  // namespace

void YamlReader::ReadInputs(const Entry& e, std::string_view context, RawTask* task) {
  auto add = [&](const YNode& item, Pos where) {
    if (!item.IsScalar()) {
      Error(where, "'inputs'" + std::string(context) +
                       " must list file paths or globs, " + Got(item));
      return;
    }
    const std::string& pattern = item.Scalar();
    if (std::string why = BadInputPattern(pattern); !why.empty()) {
      Error(where, why + std::string(context));
      return;
    }
    if (task->inputs.size() >= kMaxInputPatterns) {
      Error(where, "'inputs'" + std::string(context) + " lists more than " +
                       std::to_string(kMaxInputPatterns) + " paths");
      return;
    }
    task->inputs.push_back(
        InputDecl{pattern, SourceLocation{"", where.line, where.column}});
  };
  if (e.value.IsScalar()) {
    add(e.value, e.value_pos);
  } else if (e.value.IsSequence()) {
    for (size_t i = 0; i < e.value.size(); ++i) {
      const YNode item = e.value.Item(i);
      add(item, IsEmpty(item) ? e.value_pos : At(item));
    }
  } else {
    Error(e.value_pos, "'inputs'" + std::string(context) +
                           " must be a file path or a list of paths and globs, " +
                           Got(e.value));
  }
}

}  // namespace drover::spec::internal
