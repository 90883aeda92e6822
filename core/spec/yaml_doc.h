// YamlDoc: a parsed YAML document as a compact, read-only tree.
//
// Built from yaml-cpp's parser events rather than with YAML::Load: a
// YAML::Node costs some 300 bytes and a shared_ptr per value, which made a
// 100,000-task file take ~300 MB and seconds to load. Here a value is 20
// bytes plus its text. Aliases (*x) share the anchored node; nothing is
// copied, but each value knows its weight: what reading it copies, aliases
// included (yaml_reader.h bounds a job's). yaml_doc.cc is the only file of
// drover that includes yaml-cpp.
#ifndef DROVER_CORE_SPEC_YAML_DOC_H_
#define DROVER_CORE_SPEC_YAML_DOC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace drover::spec::internal {

class YamlDoc {
 public:
  enum class Kind : uint8_t { kNull, kScalar, kSequence, kMap };
  static constexpr uint32_t kNoOffset = UINT32_MAX;
  // What a value weighs beside its text: the least a copy of it costs.
  static constexpr uint32_t kValueCost = 16;
  // A weight this large or larger (also that of a value holding itself
  // through an alias, `&a [*a]`).
  static constexpr uint32_t kHeavy = UINT32_MAX;

 private:
  struct Rec {
    Kind kind = Kind::kNull;
    bool plain = false;  // a scalar written without quotes, block style or tag
    uint32_t offset = kNoOffset;
    uint32_t first = 0;  // scalar: index in scalars_; container: in children_
    uint32_t count = 0;  // container: items, or pairs of a map
    uint32_t weight = 0;  // Node::weight()
  };

 public:
  // A value in the document: a cheap handle, valid while its YamlDoc lives.
  class Node {
   public:
    Kind kind() const { return rec().kind; }
    // Null covers `key:` with nothing after it, `~` and a plain `null`.
    bool IsNull() const { return kind() == Kind::kNull; }
    bool IsScalar() const { return kind() == Kind::kScalar; }
    bool IsSequence() const { return kind() == Kind::kSequence; }
    bool IsMap() const { return kind() == Kind::kMap; }
    // The text as written (without quotes); empty unless a scalar.
    const std::string& Scalar() const;
    // A scalar written plain: not quoted, not a block scalar (| or >), no
    // explicit tag. Only plain scalars are typed (YAML's core schema), so
    // that `"5"` stays a string where `5` is a number.
    bool IsPlain() const { return IsScalar() && rec().plain; }
    // Items of a sequence, pairs of a map, 0 for anything else.
    size_t size() const { return IsSequence() || IsMap() ? rec().count : 0; }
    Node Item(size_t i) const { return Child(i); }       // sequence item i
    Node Key(size_t i) const { return Child(2 * i); }    // map pair i
    Node Value(size_t i) const { return Child(2 * i + 1); }
    // Byte offset where the value starts in the parsed text (yaml-cpp skips
    // a byte order mark before counting), or kNoOffset.
    uint32_t offset() const { return rec().offset; }
    // What reading the value whole copies: the bytes of its scalars (map
    // keys included) plus kValueCost per value, a value an alias repeats
    // counted again each time, saturating at kHeavy. O(1): computed once
    // by the parse, so that a bound on it is checked before any copy.
    uint32_t weight() const { return rec().weight; }
    // Where child i (Item(i), or Child(2i) / Child(2i+1) of a map: see
    // KeyAlias / ValueAlias) was written as an alias (*x), or kNoOffset
    // when it was written out there. A value an alias repeats has the
    // offset of its anchor; this is where the repetition is.
    // O(log aliases in the document).
    uint32_t ItemAlias(size_t i) const { return ChildAlias(i); }
    uint32_t KeyAlias(size_t i) const { return ChildAlias(2 * i); }
    uint32_t ValueAlias(size_t i) const { return ChildAlias(2 * i + 1); }

   private:
    friend class YamlDoc;
    Node(const YamlDoc* doc, uint32_t index) : doc_(doc), index_(index) {}
    const Rec& rec() const { return doc_->nodes_[index_]; }
    Node Child(size_t i) const {
      return Node(doc_, doc_->children_[rec().first + static_cast<uint32_t>(i)]);
    }
    uint32_t ChildAlias(size_t i) const;

    const YamlDoc* doc_;
    uint32_t index_;
  };

  Node root() const { return Node(this, root_); }

 private:
  friend class DocBuilder;

  std::vector<Rec> nodes_;
  std::vector<uint32_t> children_;  // a map's are key, value, key, value, ...
  std::vector<std::string> scalars_;
  // (index in children_, offset of the alias written there), by index.
  std::vector<std::pair<uint32_t, uint32_t>> aliases_;
  uint32_t root_ = 0;
};

struct YamlParse {
  std::optional<YamlDoc> doc;        // the first document; none if the text has none
  uint32_t second_document = YamlDoc::kNoOffset;  // where a second one starts
  bool failed = false;               // not YAML: then `error` and `error_offset`
  std::string error;
  uint32_t error_offset = YamlDoc::kNoOffset;
  // The first scalar of the first document that holds a NUL byte (raw, or
  // written "\0", "\x00" or "\u0000"), or kNoOffset.
  uint32_t nul_scalar = YamlDoc::kNoOffset;
  // Flow sequences read ahead of yaml-cpp (ParseYaml below); 0 when the
  // text was parsed whole.
  size_t read_ahead = 0;
};

// Parses `text`. Never throws: yaml-cpp's exceptions become `failed`.
//
// Flow sequences of short plain scalars (`[0, 1, 2, ...]`, what a large
// matrix is written as) are read ahead by drover and handed to yaml-cpp
// empty, `[]`: yaml-cpp's scanner matches every character against its
// regular expressions, some 6 MB/s, which made a 100,000-value matrix
// 100 ms of a submit. What is read ahead is narrow and exact: items of
// letters, digits and `_ . / + -` (not starting with two indicators, so
// never `---` or `...`), never a null, each followed on its line by `,` or
// the closing `]`, line breaks only after `[` or a comma, the sequence not
// a mapping key. yaml-cpp still parses the rest and decides what is a
// sequence: a `[` it does not open as one (inside a quoted or block
// scalar, a comment) has the whole text parsed again as it is, and so
// does a text yaml-cpp refuses, so that its error is the original's. The
// tree and every offset are those of parsing the text whole.
//
// A quoted scalar without its closing quote is `failed` at its opening
// quote: yaml-cpp ends it at the end of the text without a word, which
// made the rest of a spec one string.
YamlParse ParseYaml(std::string_view text);

// ParseYaml reading ahead only flow sequences of at least `min_items`
// items (SIZE_MAX: none). For tests, which compare both.
YamlParse ParseYamlWith(std::string_view text, size_t min_items);

}  // namespace drover::spec::internal

#endif  // DROVER_CORE_SPEC_YAML_DOC_H_
