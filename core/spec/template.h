// The pieces of a task as read from the YAML that a backend's task kind
// (task_kind.h) works with: positions, located scalars, names, and
// Template, a string with `${matrix.KEY}` holes. No yaml-cpp here.
#ifndef DROVER_CORE_SPEC_TEMPLATE_H_
#define DROVER_CORE_SPEC_TEMPLATE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace drover::spec {
struct OutputRef;  // outputs.h
}  // namespace drover::spec

namespace drover::spec::internal {

// A 1-based line and column (in characters); {0, 0} when unknown. Kept
// apart from SourceLocation so that a large file does not carry a copy of
// its own name for every value it holds.
struct Pos {
  int line = 0;
  int column = 0;
};

// A string in which every `${matrix.KEY}` was found and resolved to the
// index of KEY in the task's matrix. Any other `$` is literal text, so that
// shell variables such as ${HOME} reach the shell untouched.
class Template {
 public:
  Template() = default;
  static Template Literal(std::string text);
  // Splits `text`. A reference to a key that is not in `keys`, or an
  // unterminated "${matrix.", adds a message to `errors` (`task` names the
  // task in it); with `lenient`, unknown keys are not reported (the matrix
  // itself was bad, so they would only repeat its error).
  //
  // With `refs`, `${tasks.NAME...}` references (outputs.h) are holes too:
  // each distinct one is appended to *refs once (with `where`), and its hole
  // stands for key keys.size() + its index in *refs. A malformed one adds
  // a message. Without `refs` they are literal text.
  static Template Compile(std::string_view text, const std::vector<std::string>& keys,
                          bool has_matrix, bool lenient, std::string_view task,
                          std::vector<std::string>* errors,
                          std::vector<OutputRef>* refs = nullptr, Pos where = {});

  bool constant() const { return refs_.empty(); }
  // The text; only meaningful when constant().
  const std::string& text() const { return parts_.front(); }
  // The text with references replaced: values[k] is the value of key k.
  std::string Render(const std::vector<const std::string*>& values) const;
  // The literal pieces around the references (refs().size() + 1 of them),
  // and the matrix key index of each reference.
  const std::vector<std::string>& parts() const { return parts_; }
  const std::vector<uint32_t>& refs() const { return refs_; }

 private:
  std::vector<std::string> parts_{std::string()};  // refs_.size() + 1 parts
  std::vector<uint32_t> refs_;
};

// A scalar as written, with where it was written.
struct Located {
  std::string text;
  Pos where;
};

using RawEnv = std::vector<std::pair<std::string, Located>>;

// A name a task or `defaults` refers to (`fn`, `pool`), with where it was
// written. `ok` is false when it was already reported as wrong: whoever
// inherits it must not report it again.
struct NameRef {
  std::string name;
  Pos key;  // of the key, for "does not apply" errors
  bool ok = true;
};

}  // namespace drover::spec::internal

#endif  // DROVER_CORE_SPEC_TEMPLATE_H_
