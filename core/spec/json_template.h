// YAML values as JSON: the typing of plain scalars (YAML 1.2's core
// schema), JSON string escaping, and JsonTemplate, the JSON text of a task's
// `args` or `message` with holes where `${matrix.KEY}` values go. Internal
// to core/spec; no yaml-cpp here (the YAML walk is in json_reader.cc).
#ifndef DROVER_CORE_SPEC_JSON_TEMPLATE_H_
#define DROVER_CORE_SPEC_JSON_TEMPLATE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace drover::spec::internal {

// The JSON text of a plain YAML scalar under the core schema: `null`, `~`
// and "" -> null; true/false (also True, TRUE, ...) -> a boolean; decimal,
// 0o octal and 0x hex integers and decimal floats -> a number, rewritten in
// JSON's grammar (`+5` -> 5, `007` -> 7, `.5` -> 0.5, `0x1F` -> 31);
// anything else -> a JSON string. Nullopt for a number JSON cannot hold:
// .inf, .nan, or a hex or octal integer above 2^64 - 1.
std::optional<std::string> PlainScalarJson(std::string_view text);

// Appends `text` escaped for the inside of a JSON string (", \ and control
// characters; UTF-8 passes through).
void AppendJsonEscaped(std::string_view text, std::string* out);
// Appends `text` as a JSON string, quotes included.
void AppendJsonString(std::string_view text, std::string* out);

// JSON text with holes for matrix values. A hole is either inside a string
// literal (the value is escaped into it) or a whole value (the value's own
// JSON form: a matrix value written `3` gives 3, written "3" gives "3").
class JsonTemplate {
 public:
  enum class Hole : uint8_t { kInString, kWhole };

  static JsonTemplate Literal(std::string json);

  // Appends literal JSON text.
  void Text(std::string_view json) { parts_.back().append(json); }
  // Appends a hole for the value of matrix key number `key`.
  void AddHole(uint32_t key, Hole kind);

  bool constant() const { return holes_.empty(); }
  // The text; only meaningful when constant().
  const std::string& text() const { return parts_.front(); }
  // Bytes of literal text, holes not counted.
  size_t literal_size() const { return closed_size_ + parts_.back().size(); }
  struct HoleRef {
    uint32_t key;
    Hole kind;
  };
  const std::vector<HoleRef>& holes() const { return holes_; }
  // The literal pieces around the holes (holes().size() + 1 of them).
  const std::vector<std::string>& parts() const { return parts_; }

  // The text with its holes filled: `values[k]` is the value of key k as
  // written, `json[k]` its JSON form.
  std::string Render(const std::vector<const std::string*>& values,
                     const std::vector<const std::string*>& json) const;

 private:
  std::vector<std::string> parts_{std::string()};  // holes_.size() + 1 parts
  std::vector<HoleRef> holes_;
  size_t closed_size_ = 0;  // bytes of every part but the last
};

}  // namespace drover::spec::internal

#endif  // DROVER_CORE_SPEC_JSON_TEMPLATE_H_
