// LoadString / LoadFile: bytes -> UTF-8 check -> yaml-cpp -> RawJob
// (yaml_reader.cc, task_reader.cc) -> graph checks (graph.cc) -> JobSpec
// (expand.cc). yaml-cpp's exceptions stop in yaml_doc.cc.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/base/files.h"
#include "core/spec/job_spec.h"
#include "core/spec/raw_job.h"
#include "core/spec/text.h"
#include "core/spec/yaml_doc.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec {
namespace {

using internal::ErrorSink;
using internal::Pos;

std::string HexByte(unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[c >> 4] + kHex[c & 0xF];
}

std::string DefaultName(const std::string& file) {
  std::string stem = std::filesystem::path(file).stem().string();
  // A job's name goes to logs and terminals; so may a file's name, but
  // not with a line break or an escape sequence in it.
  if (stem.empty() || internal::FindInvalidUtf8(stem) != std::string::npos ||
      internal::HasControlCharacter(stem)) {
    return "job";
  }
  return stem;
}

// The first CR not followed by LF, or npos.
size_t FindLoneCr(std::string_view text) {
  for (size_t i = text.find('\r'); i != std::string_view::npos;
       i = text.find('\r', i + 1)) {
    if (i + 1 == text.size() || text[i + 1] != '\n') return i;
  }
  return std::string_view::npos;
}

LoadResult Finish(ErrorSink* errors) {
  LoadResult result;
  result.errors = errors->Take();
  return result;
}

}  // namespace

LoadResult LoadString(std::string_view text, std::string file,
                      const LoadOptions& options) {
  ErrorSink errors(file);
  if (options.kinds == nullptr) {  // a caller's bug, reported as a load error
    errors.Add(Pos{}, "no backends to read tasks with (LoadOptions::kinds is not set)");
    return Finish(&errors);
  }
  if (text.size() >= internal::YamlDoc::kNoOffset) {  // offsets are 32-bit
    errors.Add(Pos{}, "the file is too large (4 GiB or more)");
    return Finish(&errors);
  }

  // yaml-cpp reads invalid UTF-8 without complaint, so check first, and
  // point at the byte an editor would show as broken.
  const size_t bad = internal::FindInvalidUtf8(text);
  if (bad != std::string_view::npos) {
    const internal::TextIndex index(text);
    errors.Add(Pos{index.Line(bad), index.Column(bad)},
               "the file is not valid UTF-8 (byte " +
                   HexByte(static_cast<unsigned char>(text[bad])) + ")");
    return Finish(&errors);
  }
  // yaml-cpp reads a raw NUL inside a scalar as a lone 0x85 byte, and
  // YAML allows no raw control character at all.
  const size_t control = internal::FindControlCharacter(text);
  if (control != std::string_view::npos) {
    const internal::TextIndex index(text);
    errors.Add(
        Pos{index.Line(control), index.Column(control)},
        "the file holds a control character (byte " +
            HexByte(static_cast<unsigned char>(text[control])) +
            "), which YAML does not allow: write it as an escape in a double-quoted "
            "string");
    return Finish(&errors);
  }
  const size_t bom = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  internal::YamlReader reader(text, bom, &errors);
  reader.set_undeclared_pools(options.undeclared_pools);
  reader.set_kinds(options.kinds);

  internal::YamlParse parsed = internal::ParseYaml(text);
  if (parsed.failed) {
    // yaml-cpp reads a lone CR as part of a line, so a file saved with
    // classic Mac line endings is one line it refuses somewhere inside.
    const size_t cr = FindLoneCr(text);
    if (cr != std::string_view::npos) {
      const internal::TextIndex index(text);
      errors.Add(Pos{index.Line(cr), index.Column(cr)},
                 "a line ends with a lone CR (classic Mac line endings), which drover "
                 "does not read: save the file with LF or CRLF line endings");
      return Finish(&errors);
    }
    errors.Add(reader.At(parsed.error_offset), "not valid YAML: " + parsed.error);
    return Finish(&errors);
  }
  if (parsed.nul_scalar != internal::YamlDoc::kNoOffset) {
    // A C string ends at a NUL: `run: "echo a\0b"` would run `echo a`.
    errors.Add(reader.At(parsed.nul_scalar),
               "a string holds a NUL byte, which would cut a command, a path or an "
               "environment entry short");
    return Finish(&errors);
  }
  if (!parsed.doc) {
    errors.Add(Pos{1, 1}, "the file is empty: a job needs 'version: 1' and 'tasks'");
    return Finish(&errors);
  }
  if (parsed.second_document != internal::YamlDoc::kNoOffset) {
    errors.Add(reader.At(parsed.second_document),
               "a job file holds one YAML document; this is a second one");
  }
  internal::RawJob job;
  reader.ReadJob(parsed.doc->root(), &job);
  parsed.doc.reset();  // the tree is not needed for expansion: free it first
  if (job.name.empty()) job.name = DefaultName(file);

  internal::CheckGraph(&job, options, &errors);
  if (!errors.empty()) return Finish(&errors);
  LoadResult result;
  result.spec = internal::Expand(std::move(job), file);
  return result;
}

bool MayNameInputs(std::string_view text) {
  return text.find("inputs") != std::string_view::npos ||
         text.find('\\') != std::string_view::npos;
}

namespace internal {

std::string ReadFailure(int err) {
  switch (err) {
    case EFBIG:
      return "the file is larger than " + std::to_string(kMaxSpecBytes >> 20) + " MiB";
    case EISDIR:
      return "cannot read the file: it is a directory";
    default:
      return std::string("cannot read the file: ") + std::strerror(err);
  }
}

}  // namespace internal

Result<std::string> ReadSpecFile(const std::string& path) {
  std::string text;
  if (const int err = ReadWholeFile(path, &text, kMaxSpecBytes); err != 0) {
    return InvalidArgument(path + ": " + internal::ReadFailure(err));
  }
  return text;
}

LoadResult LoadFile(const std::filesystem::path& path, const LoadOptions& options) {
  const std::string file = path.string();
  std::string text;
  if (const int err = ReadWholeFile(file, &text, kMaxSpecBytes); err != 0) {
    ErrorSink errors(file);
    errors.Add(Pos{}, internal::ReadFailure(err));
    return Finish(&errors);
  }
  return LoadString(text, file, options);
}

}  // namespace drover::spec
