#include "core/spec/outputs.h"

#include <algorithm>

#include "core/spec/json_template.h"
#include "core/spec/task_kind.h"
#include "core/spec/text.h"

namespace drover::spec {
namespace {

constexpr std::string_view kHowTo =
    " (write ${tasks.NAME.outputs.KEY}, ${tasks.NAME.result} or "
    "${tasks.NAME[KEY=VALUE].outputs.KEY})";

std::string Keys(const Outputs& outputs) {
  if (outputs.empty()) return "it produced no outputs";
  std::string all = "its outputs: ";
  size_t n = 0;
  for (const auto& [k, v] : outputs) {
    if (n++ == 20) {
      all += ", ...";
      break;
    }
    all += (n > 1 ? ", " : "") + k;
  }
  return all;
}

}  // namespace

Result<OutputRef> ParseOutputRef(std::string_view text, size_t* length) {
  const size_t close = text.find('}');
  if (close == std::string_view::npos) {
    return InvalidArgument("unterminated " + internal::Quoted(kTasksRefOpen) +
                           std::string(kHowTo));
  }
  *length = close + 1;
  OutputRef ref;
  ref.text = std::string(text.substr(0, close + 1));
  std::string_view inner =
      text.substr(kTasksRefOpen.size(), close - kTasksRefOpen.size());
  auto bad = [&](std::string why) {
    return InvalidArgument("malformed reference " + internal::Quoted(ref.text) + ": " +
                           why + std::string(kHowTo));
  };
  constexpr std::string_view kResult = ".result";
  constexpr std::string_view kOutputs = ".outputs.";
  std::string_view target;
  if (inner.size() > kResult.size() && inner.ends_with(kResult)) {
    target = inner.substr(0, inner.size() - kResult.size());
    ref.key = "result";
  } else if (const size_t at = inner.rfind(kOutputs);
             at != std::string_view::npos && at > 0) {
    target = inner.substr(0, at);
    const std::string_view key = inner.substr(at + kOutputs.size());
    if (!ValidOutputKey(key)) {
      return bad(internal::Quoted(key) +
                 " is not an output name (1 to 128 of A-Z a-z 0-9 _ -)");
    }
    ref.key = std::string(key);
  } else {
    return bad("it names no output");
  }
  if (const size_t open = target.find('['); open != std::string_view::npos) {
    if (!target.ends_with("]")) return bad("'[' without a closing ']'");
    std::string_view select = target.substr(open + 1, target.size() - open - 2);
    target = target.substr(0, open);
    while (true) {
      const size_t comma = select.find(',');
      const std::string_view pair = select.substr(0, comma);
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        return bad("the instance is picked with [KEY=VALUE], got " +
                   internal::Quoted(pair));
      }
      ref.select.emplace_back(std::string(pair.substr(0, eq)),
                              std::string(pair.substr(eq + 1)));
      if (comma == std::string_view::npos) break;
      select.remove_prefix(comma + 1);
    }
  }
  if (!internal::IsValidName(target)) {
    return bad(internal::Quoted(target) + " is not a task name");
  }
  ref.task = std::string(target);
  return ref;
}

Status RenderWithOutputs(const TaskSpec& ts, const OutputsOf& outputs_of, TaskSpec* out) {
  const DeferredRender& d = *ts.deferred;
  const size_t keys = d.matrix_keys;
  std::vector<std::string> owned_values(keys + d.refs.size());
  std::vector<std::string> owned_json(keys + d.refs.size());
  for (size_t k = 0; k < keys && k < ts.matrix.size(); ++k) {
    owned_values[k] = ts.matrix[k].second;
    owned_json[k] = k < ts.matrix_json.size() ? ts.matrix_json[k] : std::string();
  }
  auto value_of = [&](const OutputRef& ref,
                      uint32_t index) -> Result<const std::string*> {
    const Outputs* outputs = outputs_of(index);
    static const Outputs kNone;
    if (outputs == nullptr) outputs = &kNone;
    auto it = outputs->find(ref.key);
    if (it == outputs->end()) {
      std::string which;
      if (ref.dynamic) {
        const auto at = std::find(ref.indices.begin(), ref.indices.end(), index);
        which = " (instance " + std::to_string(at - ref.indices.begin() + 1) + " of " +
                std::to_string(ref.indices.size()) + ")";
      } else if (ref.count > 1) {
        which = " (instance " + std::to_string(index - ref.first + 1) + " of " +
                std::to_string(ref.count) + ")";
      }
      return NotFound(ref.text + ": task " + internal::Quoted(ref.task) + which +
                      " produced no output " + internal::Quoted(ref.key) + " (" +
                      Keys(*outputs) + ")");
    }
    return &it->second;
  };
  for (size_t r = 0; r < d.refs.size(); ++r) {
    const OutputRef& ref = d.refs[r];
    std::string& value = owned_values[keys + r];
    std::string& json = owned_json[keys + r];
    if (ref.dynamic) {
      // A dynamic matrix task: the list of the instances it expanded to.
      if (ref.indices.empty()) {
        return NotFound(ref.text + ": task " + internal::Quoted(ref.task) +
                        " has not been expanded (its dynamic matrix has no values yet)");
      }
      json = "[";
      for (size_t i = 0; i < ref.indices.size(); ++i) {
        Result<const std::string*> v = value_of(ref, ref.indices[i]);
        if (!v.ok()) return v.status();
        if (i > 0) json += ',';
        json += OutputJson(**v);
      }
      json += ']';
      value = json;
      continue;
    }
    if (ref.pick || ref.count == 1) {
      Result<const std::string*> v = value_of(ref, ref.pick ? *ref.pick : ref.first);
      if (!v.ok()) return v.status();
      value = **v;
      json = OutputJson(value);
      continue;
    }
    // Every instance of a matrix task: a JSON list in instance order.
    json = "[";
    for (uint32_t i = 0; i < ref.count; ++i) {
      Result<const std::string*> v = value_of(ref, ref.first + i);
      if (!v.ok()) return v.status();
      if (i > 0) json += ',';
      json += OutputJson(**v);
    }
    json += ']';
    value = json;
  }
  std::vector<const std::string*> values(owned_values.size());
  std::vector<const std::string*> jsons(owned_json.size());
  for (size_t k = 0; k < values.size(); ++k) {
    values[k] = &owned_values[k];
    jsons[k] = &owned_json[k];
  }
  const uint64_t fingerprint = ts.fingerprint;
  d.compiled->Render(Instance(values, jsons), out);
  out->fingerprint = fingerprint;
  return Status::Ok();
}

}  // namespace drover::spec
