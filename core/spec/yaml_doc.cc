#include "core/spec/yaml_doc.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <istream>
#include <streambuf>

namespace drover::spec::internal {

const std::string& YamlDoc::Node::Scalar() const {
  static const std::string kEmpty;
  return IsScalar() ? doc_->scalars_[rec().first] : kEmpty;
}

namespace {

uint32_t OffsetOf(const YAML::Mark& mark) {
  if (mark.is_null() || mark.pos < 0 || static_cast<uint64_t>(mark.pos) >= YamlDoc::kNoOffset) {
    return YamlDoc::kNoOffset;
  }
  return static_cast<uint32_t>(mark.pos);
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

// Turns the event stream of one document into a YamlDoc. Children of an
// open container collect on one shared stack and move to the document's
// flat child list when it closes, so building allocates no per-container
// vectors.
class DocBuilder : public YAML::EventHandler {
 public:
  explicit DocBuilder(YamlDoc* doc) : doc_(doc) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Add(NewNode(YamlDoc::Kind::kNull, mark, anchor));
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    // yaml-cpp refuses an alias to an unknown anchor; be safe anyway.
    if (anchor < anchors_.size()) {
      Add(anchors_[anchor]);
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
    doc_->scalars_.push_back(value);
    Add(index);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/,
                       YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    Open(NewNode(YamlDoc::Kind::kSequence, mark, anchor));
  }
  void OnSequenceEnd() override { Close(/*pairs=*/false); }
  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(NewNode(YamlDoc::Kind::kMap, mark, anchor));
  }
  void OnMapEnd() override { Close(/*pairs=*/true); }

  uint32_t nul_scalar() const { return nul_scalar_; }

 private:
  struct Open_ {
    uint32_t node;
    size_t first_pending;
  };

  uint32_t NewNode(YamlDoc::Kind kind, const YAML::Mark& mark, YAML::anchor_t anchor) {
    const auto index = static_cast<uint32_t>(doc_->nodes_.size());
    YamlDoc::Rec rec;
    rec.kind = kind;
    rec.offset = OffsetOf(mark);
    doc_->nodes_.push_back(rec);
    if (anchor != YAML::NullAnchor) {
      if (anchors_.size() <= anchor) anchors_.resize(anchor + 1, index);
      anchors_[anchor] = index;
    }
    return index;
  }
  void Add(uint32_t index) {
    if (open_.empty()) {
      doc_->root_ = index;
    } else {
      pending_.push_back(index);
    }
  }
  void Open(uint32_t index) {
    Add(index);
    open_.push_back({index, pending_.size()});
  }
  void Close(bool pairs) {
    const Open_ top = open_.back();
    open_.pop_back();
    YamlDoc::Rec& rec = doc_->nodes_[top.node];
    rec.first = static_cast<uint32_t>(doc_->children_.size());
    const size_t n = pending_.size() - top.first_pending;
    rec.count = static_cast<uint32_t>(pairs ? n / 2 : n);
    doc_->children_.insert(doc_->children_.end(), pending_.begin() + top.first_pending,
                           pending_.end());
    pending_.resize(top.first_pending);
  }

  YamlDoc* doc_;
  std::vector<Open_> open_;
  std::vector<uint32_t> pending_;
  std::vector<uint32_t> anchors_;
  uint32_t nul_scalar_ = YamlDoc::kNoOffset;
};

YamlParse ParseYaml(std::string_view text) {
  YamlParse result;
  ViewBuffer buffer(text);
  std::istream in(&buffer);
  try {
    YAML::Parser parser(in);
    YamlDoc doc;
    DocBuilder builder(&doc);
    if (!parser.HandleNextDocument(builder)) return result;
    result.nul_scalar = builder.nul_scalar();
    result.doc = std::move(doc);
    StartRecorder second;
    if (parser.HandleNextDocument(second)) result.second_document = second.start;
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

}  // namespace drover::spec::internal
