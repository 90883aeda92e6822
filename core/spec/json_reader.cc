// YamlReader, part four: a task's `args` or `message`, any YAML value, as
// compact JSON text (docs/spec.md, "args and message as JSON"). Maps become
// objects in file order, sequences arrays; plain scalars are typed by
// YAML's core schema, other scalars are strings; `${matrix.KEY}` becomes a
// hole in a JsonTemplate, filled per instance by expand.cc.
#include <algorithm>

#include "core/spec/json_template.h"
#include "core/spec/text.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec::internal {
namespace {

constexpr size_t kNotComputed = static_cast<size_t>(-1);

uint64_t SatAdd(uint64_t a, uint64_t b) {
  uint64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

uint64_t SatMul(uint64_t a, uint64_t b) {
  uint64_t product = 0;
  return __builtin_mul_overflow(a, b, &product) ? UINT64_MAX : product;
}

}  // namespace

struct YamlReader::JsonBuild {
  RawTask* task;
  std::string label;     // "'args' in task 'a'", for messages
  JsonTemplate out;
  uint64_t hole_bytes = 0;  // the most the holes can add, over all instances
  bool failed = false;      // too large or too deep: stop converting
  // Per matrix key, the longest value once escaped into a string, and the
  // longest JSON form; computed when a hole first needs them.
  std::vector<size_t> max_escaped;
  std::vector<size_t> max_json;

  size_t MaxEscaped(uint32_t key) {
    if (max_escaped.empty()) max_escaped.assign(task->matrix_keys.size(), kNotComputed);
    if (max_escaped[key] == kNotComputed) {
      size_t longest = 0;
      std::string escaped;
      for (const std::string& value : task->matrix_values[key]) {
        escaped.clear();
        AppendJsonEscaped(value, &escaped);
        longest = std::max(longest, escaped.size());
      }
      max_escaped[key] = longest;
    }
    return max_escaped[key];
  }
  size_t MaxJson(uint32_t key) {
    if (max_json.empty()) max_json.assign(task->matrix_keys.size(), kNotComputed);
    if (max_json[key] == kNotComputed) {
      size_t longest = 0;
      for (const std::string& json : task->matrix_json[key]) {
        longest = std::max(longest, json.size());
      }
      max_json[key] = longest;
    }
    return max_json[key];
  }
};

JsonTemplate YamlReader::ReadJson(const Entry& e, RawTask* task) {
  // The job is refused already: converting more would only hold memory.
  if (json_over_job_cap_) return JsonTemplate::Literal("null");
  JsonBuild b{task, "'" + e.key + "' in task " + Quoted(task->name), JsonTemplate(), 0, false,
              {}, {}};
  AppendJson(e.value, e.value_pos, 0, &b);
  if (b.failed) return JsonTemplate::Literal("null");
  const uint64_t size = SatAdd(b.out.literal_size(), b.hole_bytes);
  if (size > kMaxJsonBytes) {
    Error(e.value_pos, b.label + " is " + WithCommas(size) +
                           " bytes as JSON (for its largest matrix values), more than the "
                           "cap of " + WithCommas(kMaxJsonBytes));
    return JsonTemplate::Literal("null");
  }
  json_bytes_ = SatAdd(json_bytes_, SatMul(size, task->instances));
  if (json_bytes_ > kMaxJobJsonBytes && !json_over_job_cap_) {
    json_over_job_cap_ = true;
    Error(e.value_pos, "the job's args and messages add up to more than " +
                           WithCommas(kMaxJobJsonBytes) + " bytes of JSON over all task "
                           "instances (the cap), reached at " + b.label);
  }
  return std::move(b.out);
}

void YamlReader::AppendJson(const YNode& node, Pos where, int depth, JsonBuild* b) {
  if (b->failed) return;
  if (depth > kMaxJsonDepth) {
    Error(where, b->label + " nests more than " + std::to_string(kMaxJsonDepth) +
                     " levels deep (or a YAML alias refers to itself)");
    b->failed = true;
    return;
  }
  switch (node.kind()) {
    case YamlDoc::Kind::kNull:
      b->out.Text("null");
      break;
    case YamlDoc::Kind::kScalar:
      AppendJsonScalar(node, where, b);
      break;
    case YamlDoc::Kind::kSequence:
      b->out.Text("[");
      for (size_t i = 0; i < node.size() && !b->failed; ++i) {
        if (i > 0) b->out.Text(",");
        const YNode item = node.Item(i);
        AppendJson(item, IsEmpty(item) ? where : At(item), depth + 1, b);
      }
      b->out.Text("]");
      break;
    case YamlDoc::Kind::kMap: {
      b->out.Text("{");
      bool first = true;
      // A key is always a string: `1: x` gives {"1": "x"}. A key that is
      // not a scalar (or is null) is reported by Entries.
      for (const Entry& entry : Entries(node, " in " + b->label, MapKind::kKeys)) {
        if (b->failed) break;
        if (!first) b->out.Text(",");
        first = false;
        std::string key;
        AppendJsonString(entry.key, &key);
        key += ':';
        b->out.Text(key);
        AppendJson(entry.value, entry.value_pos, depth + 1, b);
      }
      b->out.Text("}");
      break;
    }
  }
  // Checked as it grows: YAML aliases let a few lines stand for gigabytes.
  if (!b->failed && b->out.literal_size() > kMaxJsonBytes) {
    Error(where, b->label + " is more than " + WithCommas(kMaxJsonBytes) +
                     " bytes as JSON (the cap)");
    b->failed = true;
  }
}

void YamlReader::AppendJsonScalar(const YNode& node, Pos where, JsonBuild* b) {
  const std::string& text = node.Scalar();
  RawTask* task = b->task;
  if (text.find("${matrix.") != std::string::npos ||
      text.find(kTasksRefOpen) != std::string::npos) {
    const Template t = Compile(Located{text, where}, task);
    const std::vector<std::string>& parts = t.parts();
    const size_t matrix_keys = task->matrix_keys.size();
    if (t.refs().size() == 1 && parts[0].empty() && parts[1].empty() &&
        t.refs()[0] >= matrix_keys) {
      // Exactly one upstream output: its JSON form (OutputJson), known at
      // dispatch; the outputs cap bounds its size.
      b->out.AddHole(t.refs()[0], JsonTemplate::Hole::kWhole);
      return;
    }
    if (t.refs().size() == 1 && parts[0].empty() && parts[1].empty()) {
      // Exactly one reference: the value keeps the type it has in the
      // matrix (`n: [1, "2"]` gives 1 and "2").
      const uint32_t key = t.refs()[0];
      const std::vector<std::string>& json = task->matrix_json[key];
      const auto bad = std::find(json.begin(), json.end(), std::string());
      if (bad != json.end()) {
        const std::string& value = task->matrix_values[key][bad - json.begin()];
        Error(where, Quoted(text) + " in " + b->label + " stands for the matrix value " +
                         Quoted(value) +
                         ", a number JSON cannot hold (quote it in the matrix to send a "
                         "string)");
        b->out.Text("null");
        return;
      }
      b->out.AddHole(key, JsonTemplate::Hole::kWhole);
      b->hole_bytes = SatAdd(b->hole_bytes, b->MaxJson(key));
      return;
    }
    if (!t.constant()) {
      // Text around the references: a string, the values escaped into it.
      std::string piece = "\"";
      for (size_t k = 0; k < t.refs().size(); ++k) {
        AppendJsonEscaped(parts[k], &piece);
        b->out.Text(piece);
        piece.clear();
        b->out.AddHole(t.refs()[k], JsonTemplate::Hole::kInString);
        if (t.refs()[k] < matrix_keys) {
          b->hole_bytes = SatAdd(b->hole_bytes, b->MaxEscaped(t.refs()[k]));
        }
      }
      AppendJsonEscaped(parts.back(), &piece);
      piece += '"';
      b->out.Text(piece);
      return;
    }
    // No reference resolved (each was reported): type the text as written.
  }
  std::string json;
  if (!node.IsPlain()) {
    AppendJsonString(text, &json);
  } else if (std::optional<std::string> typed = PlainScalarJson(text)) {
    json = std::move(*typed);
  } else {
    Error(where, Quoted(text) + " in " + b->label +
                     " is a number JSON cannot hold (infinity, NaN, or a hex or octal "
                     "number above 2^64-1): quote it to send a string");
    json = "null";
  }
  b->out.Text(json);
}

}  // namespace drover::spec::internal
