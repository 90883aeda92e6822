#include "core/spec/yaml_doc.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <istream>
#include <streambuf>

namespace drover::spec::internal {

const std::string& YamlDoc::Node::Scalar() const {
  static const std::string kEmpty;
  return IsScalar() ? doc_->scalars_[rec().first] : kEmpty;
}

uint32_t YamlDoc::Node::ChildAlias(size_t i) const {
  const uint32_t slot = rec().first + static_cast<uint32_t>(i);
  const auto& aliases = doc_->aliases_;
  const auto it = std::lower_bound(
      aliases.begin(), aliases.end(), slot,
      [](const std::pair<uint32_t, uint32_t>& a, uint32_t s) { return a.first < s; });
  return it != aliases.end() && it->first == slot ? it->second : kNoOffset;
}

namespace {

uint32_t OffsetOf(const YAML::Mark& mark) {
  if (mark.is_null() || mark.pos < 0 || static_cast<uint64_t>(mark.pos) >= YamlDoc::kNoOffset) {
    return YamlDoc::kNoOffset;
  }
  return static_cast<uint32_t>(mark.pos);
}

uint32_t SaturatingAdd(uint32_t a, uint64_t b) {
  return static_cast<uint32_t>(std::min<uint64_t>(a + b, YamlDoc::kHeavy));
}

// Whether the quoted scalar opening at text[open] has its closing quote.
// Inside double quotes a backslash escapes the next character; inside
// single quotes '' is a quote. Nothing else ends or escapes one, wherever
// it is in the document.
bool IsClosed(std::string_view text, size_t open) {
  const char quote = text[open];
  for (size_t p = open + 1; p < text.size(); ++p) {
    if (quote == '"' && text[p] == '\\') {
      ++p;
    } else if (text[p] == quote) {
      if (quote == '"' || p + 1 >= text.size() || text[p + 1] != '\'') return true;
      ++p;
    }
  }
  return false;
}

// An istream over the caller's bytes, without copying them.
class ViewBuffer : public std::streambuf {
 public:
  explicit ViewBuffer(std::string_view text) {
    char* begin = const_cast<char*>(text.data());  // read-only: no put area
    setg(begin, begin, begin + text.size());
  }
};

// Only notes where a document starts (used to find a second document).
class StartRecorder : public YAML::EventHandler {
 public:
  uint32_t start = YamlDoc::kNoOffset;
  void OnDocumentStart(const YAML::Mark& mark) override { start = OffsetOf(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

// The flow sequences ParseYaml reads ahead (yaml_doc.h): found in the
// text, cut out of what yaml-cpp reads, and put back into the tree when
// yaml-cpp reports the empty sequence left in their place.
class ReadAheads {
 public:
  struct Seq {
    uint32_t open = 0;      // where its '[' is in the text
    uint32_t open_cut = 0;  // and in the text yaml-cpp reads
    uint32_t cut = 0;       // bytes cut after the '[' (up to the ']')
    std::vector<std::pair<uint32_t, uint32_t>> items;  // offset, length in the text
    bool confirmed = false;  // yaml-cpp opened a sequence at its '['
  };

  // Finds the sequences of `text` with at least `min_items` items.
  ReadAheads(std::string_view text, size_t min_items);

  bool empty() const { return seqs_.empty(); }
  size_t size() const { return seqs_.size(); }
  // `text` without the sequences' items: what yaml-cpp reads instead.
  std::string Cut() const;
  // The sequence whose '[' is at `offset` of the cut text, or null.
  Seq* At(uint32_t offset) {
    const size_t i = Before(offset);
    return i < seqs_.size() && seqs_[i].open_cut == offset ? &seqs_[i] : nullptr;
  }
  // An offset of the cut text as an offset of the text: the items of the
  // sequences whose '[' comes before it were before it.
  uint32_t Uncut(uint32_t offset) const {
    if (offset == YamlDoc::kNoOffset) return offset;
    const size_t before = Before(offset);
    return before == 0 ? offset : offset + cut_before_[before - 1];
  }
  bool AllConfirmed() const {
    return std::all_of(seqs_.begin(), seqs_.end(),
                       [](const Seq& s) { return s.confirmed; });
  }
  std::string_view text() const { return text_; }

 private:
  // How many sequences have their '[' before `offset` of the cut text.
  size_t Before(uint32_t offset) const {
    auto it = std::lower_bound(seqs_.begin(), seqs_.end(), offset,
                               [](const Seq& s, uint32_t o) { return s.open_cut < o; });
    return static_cast<size_t>(it - seqs_.begin());
  }
  // Reads the sequence whose '[' is at text_[open]: true, with its items
  // and `*close` at its ']', when it is one ParseYaml reads ahead.
  bool Scan(size_t open, Seq* seq, size_t* close) const;

  std::string_view text_;
  std::vector<Seq> seqs_;             // in text order
  std::vector<uint32_t> cut_before_;  // [i]: bytes cut by seqs_[0..i]
};

namespace {

bool IsItemByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == '/' || c == '+' || c == '-';
}

// An item starts with a letter, digit, '_' or '/', or with one of '.', '+',
// '-' before one of those: never an indicator YAML gives a meaning there
// ("- ", "---", "...").
bool IsItemStart(std::string_view text, size_t i) {
  auto plain = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '/';
  };
  if (i >= text.size()) return false;
  const char c = text[i];
  if (plain(c)) return true;
  return (c == '.' || c == '+' || c == '-') && i + 1 < text.size() && plain(text[i + 1]);
}

// Whether what precedes the '[' at text[i] on its line is what precedes a
// flow sequence in a spec (a key's ':', a list's '-', another flow
// collection), or nothing: a '[' elsewhere is text.
bool OpensAValue(std::string_view text, size_t i) {
  while (i > 0 && text[i - 1] == ' ') --i;
  if (i == 0 || text[i - 1] == '\n') return true;
  const char c = text[i - 1];
  return c == ':' || c == '-' || c == ',' || c == '[' || c == '{' || c == '?';
}

}  // namespace

ReadAheads::ReadAheads(std::string_view text, size_t min_items) : text_(text) {
  // yaml-cpp reads UTF-16 and UTF-32 too, and skips a byte order mark
  // before it counts offsets: such texts are left to it whole.
  for (size_t i = 0; i < std::min<size_t>(4, text.size()); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0 || c == 0xEF || c == 0xFE || c == 0xFF) return;
  }
  if (min_items == SIZE_MAX || text.size() >= YamlDoc::kNoOffset) return;
  uint32_t cut = 0;
  for (size_t i = text.find('['); i != std::string_view::npos;
       i = text.find('[', i + 1)) {
    if (!OpensAValue(text, i)) continue;
    Seq seq;
    size_t close = 0;
    if (!Scan(i, &seq, &close) || seq.items.size() < min_items) continue;
    seq.open = static_cast<uint32_t>(i);
    seq.open_cut = seq.open - cut;
    seq.cut = static_cast<uint32_t>(close - i - 1);
    cut += seq.cut;
    seqs_.push_back(std::move(seq));
    cut_before_.push_back(cut);
    i = close;
  }
}

bool ReadAheads::Scan(size_t open, Seq* seq, size_t* close) const {
  const std::string_view t = text_;
  size_t p = open + 1;
  auto skip_blanks = [&](bool breaks) {
    for (;;) {
      if (p < t.size() && t[p] == ' ') {
        ++p;
      } else if (breaks && p < t.size() && t[p] == '\n') {
        ++p;
      } else if (breaks && p + 1 < t.size() && t[p] == '\r' && t[p + 1] == '\n') {
        p += 2;
      } else {
        return;
      }
    }
  };
  skip_blanks(true);
  for (;;) {
    if (!IsItemStart(t, p)) return false;
    const size_t start = p;
    while (p < t.size() && IsItemByte(t[p])) ++p;
    const std::string_view item = t.substr(start, p - start);
    if (item == "null" || item == "Null" || item == "NULL") return false;
    seq->items.emplace_back(static_cast<uint32_t>(start),
                            static_cast<uint32_t>(p - start));
    // A line break after an item would make the next line part of it (a
    // plain scalar folds): only a comma or the end may follow, on its line.
    skip_blanks(false);
    if (p >= t.size()) return false;
    if (t[p] == ']') break;
    if (t[p] != ',') return false;
    ++p;
    skip_blanks(true);
  }
  *close = p;
  // Not a mapping key: an implicit key is one line of at most 1024
  // characters, which yaml-cpp would check on the text, not on "[]".
  ++p;
  skip_blanks(false);
  return p >= t.size() || t[p] != ':';
}

std::string ReadAheads::Cut() const {
  std::string out;
  out.reserve(text_.size() - (cut_before_.empty() ? 0 : cut_before_.back()));
  size_t from = 0;
  for (const Seq& s : seqs_) {
    out.append(text_.substr(from, s.open + 1 - from));
    from = s.open + 1 + s.cut;
  }
  out.append(text_.substr(from));
  return out;
}

// Turns the event stream of one document into a YamlDoc. Children of an
// open container collect on one shared stack and move to the document's
// flat child list when it closes, so building allocates no per-container
// vectors.
class DocBuilder : public YAML::EventHandler {
 public:
  // With `read_ahead`, the events are those of its cut text. `text` is
  // the text as given (offsets count after a byte order mark, `bom`).
  DocBuilder(YamlDoc* doc, ReadAheads* read_ahead, std::string_view text, size_t bom)
      : doc_(doc), read_ahead_(read_ahead), text_(text), bom_(bom) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Add(NewNode(YamlDoc::Kind::kNull, mark, anchor));
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    // yaml-cpp refuses an alias to an unknown anchor; be safe anyway.
    if (anchor < anchors_.size()) {
      Add(anchors_[anchor], Offset(mark));
    } else {
      Add(NewNode(YamlDoc::Kind::kNull, mark, YAML::NullAnchor));
    }
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    const uint32_t index = NewNode(YamlDoc::Kind::kScalar, mark, anchor);
    if (nul_scalar_ == YamlDoc::kNoOffset && value.find('\0') != std::string::npos) {
      nul_scalar_ = doc_->nodes_[index].offset;
    }
    // yaml-cpp tags a plain scalar "?" and a quoted or block one "!"; an
    // explicit tag (!!str, !foo) comes through as written.
    doc_->nodes_[index].plain = tag == "?";
    doc_->nodes_[index].first = static_cast<uint32_t>(doc_->scalars_.size());
    doc_->nodes_[index].weight = SaturatingAdd(YamlDoc::kValueCost, value.size());
    doc_->scalars_.push_back(value);
    NoteUnclosedQuote(doc_->nodes_[index].offset);
    Add(index);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/,
                       YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    ReadAheads::Seq* seq = read_ahead_ ? read_ahead_->At(OffsetOf(mark)) : nullptr;
    Open(NewNode(YamlDoc::Kind::kSequence, mark, anchor), seq);
  }
  void OnSequenceEnd() override { Close(/*pairs=*/false); }
  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(NewNode(YamlDoc::Kind::kMap, mark, anchor));
  }
  void OnMapEnd() override { Close(/*pairs=*/true); }

  uint32_t nul_scalar() const { return nul_scalar_; }
  // The opening quote of a quoted scalar without a closing one, or
  // kNoOffset.
  uint32_t unclosed_quote() const { return unclosed_quote_; }

 private:
  struct Open_ {
    uint32_t node;
    size_t first_pending;
    ReadAheads::Seq* read_ahead;  // the sequence read ahead that it is, or null
  };

  uint32_t Offset(const YAML::Mark& mark) const {
    return read_ahead_ ? read_ahead_->Uncut(OffsetOf(mark)) : OffsetOf(mark);
  }
  void NoteUnclosedQuote(uint32_t offset) {
    if (unclosed_quote_ != YamlDoc::kNoOffset || offset == YamlDoc::kNoOffset) return;
    size_t at = offset + bom_;
    // A scalar's mark is that of its anchor or tag when it has them
    // (`&a "x"`, `!!str "x"`): the quote, if any, comes after them.
    auto blank = [&](size_t i) {
      return text_[i] == ' ' || text_[i] == '\t' || text_[i] == '\r' || text_[i] == '\n';
    };
    for (int property = 0;
         property < 2 && at < text_.size() && (text_[at] == '&' || text_[at] == '!');
         ++property) {
      while (at < text_.size() && !blank(at)) ++at;
      while (at < text_.size() && blank(at)) ++at;
    }
    if (at >= text_.size() || (text_[at] != '"' && text_[at] != '\'')) return;
    if (!IsClosed(text_, at)) {
      unclosed_quote_ = static_cast<uint32_t>(at - bom_);
    }
  }
  uint32_t NewNode(YamlDoc::Kind kind, const YAML::Mark& mark, YAML::anchor_t anchor) {
    const auto index = static_cast<uint32_t>(doc_->nodes_.size());
    YamlDoc::Rec rec;
    rec.kind = kind;
    rec.offset = Offset(mark);
    // A container weighs its items once it is closed; until then an alias
    // to it (from inside: `&a [*a]`) is a value without end.
    rec.weight = kind == YamlDoc::Kind::kNull     ? YamlDoc::kValueCost
                 : kind == YamlDoc::Kind::kScalar ? 0
                                                  : YamlDoc::kHeavy;
    doc_->nodes_.push_back(rec);
    if (anchor != YAML::NullAnchor) {
      if (anchors_.size() <= anchor) anchors_.resize(anchor + 1, index);
      anchors_[anchor] = index;
    }
    return index;
  }
  // Adds a value to the open container (or makes it the root); `alias`
  // is where it was written as an alias, or kNoOffset.
  void Add(uint32_t index, uint32_t alias = YamlDoc::kNoOffset) {
    if (open_.empty()) {
      doc_->root_ = index;
    } else {
      pending_.push_back(index);
      pending_alias_.push_back(alias);
    }
  }
  void Open(uint32_t index, ReadAheads::Seq* read_ahead = nullptr) {
    Add(index);
    open_.push_back({index, pending_.size(), read_ahead});
  }
  void Close(bool pairs) {
    const Open_ top = open_.back();
    open_.pop_back();
    if (top.read_ahead != nullptr && pending_.size() == top.first_pending) {
      // Its items, plain scalars, as yaml-cpp would have reported them.
      ReadAheads::Seq& seq = *top.read_ahead;
      seq.confirmed = true;
      for (const auto& [offset, length] : seq.items) {
        YamlDoc::Rec rec;
        rec.kind = YamlDoc::Kind::kScalar;
        rec.plain = true;
        rec.offset = offset;
        rec.first = static_cast<uint32_t>(doc_->scalars_.size());
        rec.weight = SaturatingAdd(YamlDoc::kValueCost, length);
        doc_->scalars_.emplace_back(read_ahead_->text().substr(offset, length));
        pending_.push_back(static_cast<uint32_t>(doc_->nodes_.size()));
        pending_alias_.push_back(YamlDoc::kNoOffset);
        doc_->nodes_.push_back(rec);
      }
    }
    uint32_t weight = YamlDoc::kValueCost;
    for (size_t i = top.first_pending; i < pending_.size(); ++i) {
      weight = SaturatingAdd(weight, doc_->nodes_[pending_[i]].weight);
      if (pending_alias_[i] != YamlDoc::kNoOffset) {
        const size_t slot = doc_->children_.size() + (i - top.first_pending);
        doc_->aliases_.emplace_back(static_cast<uint32_t>(slot), pending_alias_[i]);
      }
    }
    YamlDoc::Rec& rec = doc_->nodes_[top.node];
    rec.first = static_cast<uint32_t>(doc_->children_.size());
    const size_t n = pending_.size() - top.first_pending;
    rec.count = static_cast<uint32_t>(pairs ? n / 2 : n);
    rec.weight = weight;
    doc_->children_.insert(doc_->children_.end(), pending_.begin() + top.first_pending,
                           pending_.end());
    pending_.resize(top.first_pending);
    pending_alias_.resize(top.first_pending);
  }

  YamlDoc* doc_;
  ReadAheads* read_ahead_;
  std::string_view text_;
  size_t bom_;
  std::vector<Open_> open_;
  std::vector<uint32_t> pending_;
  std::vector<uint32_t>
      pending_alias_;  // where each of pending_ is an alias, or kNoOffset
  std::vector<uint32_t> anchors_;
  uint32_t nul_scalar_ = YamlDoc::kNoOffset;
  uint32_t unclosed_quote_ = YamlDoc::kNoOffset;
};

namespace {

// Parses `text` with yaml-cpp; with `read_ahead`, `text` is its cut text.
YamlParse Parse(std::string_view text, ReadAheads* read_ahead) {
  YamlParse result;
  ViewBuffer buffer(text);
  std::istream in(&buffer);
  try {
    YAML::Parser parser(in);
    YamlDoc doc;
    const std::string_view whole = read_ahead ? read_ahead->text() : text;
    const size_t bom = whole.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
    DocBuilder builder(&doc, read_ahead, whole, bom);
    if (!parser.HandleNextDocument(builder)) return result;
    if (builder.unclosed_quote() != YamlDoc::kNoOffset) {
      result.failed = true;
      result.error = "the string opened here has no closing quote";
      result.error_offset = builder.unclosed_quote();
      return result;
    }
    result.nul_scalar = builder.nul_scalar();
    result.doc = std::move(doc);
    StartRecorder second;
    if (parser.HandleNextDocument(second)) {
      result.second_document =
          read_ahead ? read_ahead->Uncut(second.start) : second.start;
    }
  } catch (const YAML::DeepRecursion& e) {
    result.failed = true;
    result.error = "nested more than " + std::to_string(e.depth()) + " levels deep";
    result.error_offset = OffsetOf(e.mark);
  } catch (const YAML::Exception& e) {
    result.failed = true;
    result.error = e.msg;
    result.error_offset = OffsetOf(e.mark);
  } catch (const std::exception& e) {
    result.failed = true;
    result.error = e.what();
  }
  if (result.failed) result.doc.reset();
  return result;
}

}  // namespace

YamlParse ParseYamlWith(std::string_view text, size_t min_items) {
  ReadAheads read_ahead(text, min_items);
  if (!read_ahead.empty()) {
    const std::string cut = read_ahead.Cut();
    YamlParse result = Parse(cut, &read_ahead);
    // A refused text is parsed whole for the error's own words and place;
    // so is one where a '[' read ahead was not a sequence's (yaml_doc.h).
    if (!result.failed && read_ahead.AllConfirmed()) {
      result.read_ahead = read_ahead.size();
      return result;
    }
  }
  return Parse(text, nullptr);
}

// Sequences of any length: a spec's short ones (`needs: [a, b]`) take the
// same path as a large matrix's, and every test of a spec exercises it.
YamlParse ParseYaml(std::string_view text) { return ParseYamlWith(text, 1); }

}  // namespace drover::spec::internal
