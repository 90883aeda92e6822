// YamlReader, the first pass: the cap on what reading a job copies
// (kMaxExpandedBytes). Each use of an alias (*x) copies what it names, and
// each task copies `defaults`, so a small file can stand for gigabytes;
// the document's weights (yaml_doc.h) are added up before anything is
// read, and a job past the cap is refused without a copy made.
#include <string>

#include "core/spec/text.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec::internal {
namespace {

constexpr uint64_t kValueCost = YamlDoc::kValueCost;

// Adds `node` to *used when the total stays within the cap.
bool Fits(const YNode& node, uint64_t* used) {
  if (*used + node.weight() > kMaxExpandedBytes) return false;
  *used += node.weight();
  return true;
}

}  // namespace

bool YamlReader::WithinExpansionCap(const YNode& root) {
  if (!root.IsMap()) return true;  // ReadJob reports it
  uint64_t defaults = 0;           // what each task copies of `defaults`
  for (size_t i = 0; i < root.size(); ++i) {
    if (root.Key(i).Scalar() == "defaults") {
      defaults = root.Value(i).weight();
      break;
    }
  }
  uint64_t used = kValueCost;
  for (size_t i = 0; i < root.size(); ++i) {
    const YNode key = root.Key(i);
    const YNode value = root.Value(i);
    if (!Fits(key, &used)) return PastCap(key, root.KeyAlias(i), "a key", used);
    if (key.Scalar() != "tasks" || !value.IsMap()) {
      if (!Fits(value, &used)) {
        return PastCap(value, root.ValueAlias(i), Quoted(key.Scalar()), used);
      }
      continue;
    }
    used += kValueCost;
    for (size_t t = 0; t < value.size(); ++t) {
      const YNode name = value.Key(t);
      const YNode task = value.Value(t);
      if (!Fits(name, &used))
        return PastCap(name, value.KeyAlias(t), "a task name", used);
      if (!Fits(task, &used)) {
        return PastCap(task, value.ValueAlias(t), TaskRef(name.Scalar()), used);
      }
      if (used + defaults > kMaxExpandedBytes) {
        OverExpansionCap(At(name),
                         TaskRef(name.Scalar()) + " with its copy of 'defaults'");
        return false;
      }
      used += defaults;
    }
  }
  return true;
}

bool YamlReader::PastCap(const YNode& node, uint32_t alias, const std::string& subject,
                         uint64_t used) {
  // An alias is what the author wrote to repeat a value: point at it, not
  // at the anchor's value somewhere above.
  if (alias != YamlDoc::kNoOffset) {
    OverExpansionCap(At(alias), "the alias " + AliasText(alias) + " for " + subject,
                     node.weight() == YamlDoc::kHeavy
                         ? ": it stands for 4 GiB or more, or for a value that holds the "
                           "alias itself, which repeats without end"
                         : "");
    return false;
  }
  // Written out here: find the part that passes the cap, if any does.
  if (node.IsMap()) {
    used += kValueCost;
    for (size_t i = 0; i < node.size(); ++i) {
      const YNode key = node.Key(i);
      if (!Fits(key, &used))
        return PastCap(key, node.KeyAlias(i), "a key in " + subject, used);
      if (!Fits(node.Value(i), &used)) {
        return PastCap(node.Value(i), node.ValueAlias(i),
                       Quoted(key.Scalar()) + " in " + subject, used);
      }
    }
  } else if (node.IsSequence()) {
    used += kValueCost;
    for (size_t i = 0; i < node.size(); ++i) {
      if (!Fits(node.Item(i), &used)) {
        return PastCap(node.Item(i), node.ItemAlias(i),
                       "item " + std::to_string(i + 1) + " of " + subject, used);
      }
    }
  }
  OverExpansionCap(At(node), subject);
  return false;
}

void YamlReader::OverExpansionCap(Pos where, const std::string& subject,
                                  std::string_view why) {
  Error(where, subject + " takes the job past " +
                   std::to_string(kMaxExpandedBytes >> 20) +
                   " MiB, the most a job may expand to (each use of a YAML alias copies "
                   "what it names, and each task copies 'defaults')" +
                   std::string(why));
}

std::string YamlReader::AliasText(uint32_t offset) const {
  const size_t start = static_cast<size_t>(offset) + bom_;
  size_t end = start;
  // An alias ends at a blank or a flow indicator; a name is cut short in
  // the message, as Quoted does.
  while (end < text_.size() && end - start < 80 &&
         std::string_view(" \t\r\n,[]{}").find(text_[end]) == std::string_view::npos) {
    ++end;
  }
  return std::string(text_.substr(start, end - start));
}

}  // namespace drover::spec::internal
