#include "core/spec/dynamic_matrix.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/spec/raw_job.h"
#include "core/spec/task_kind.h"
#include "core/spec/text.h"

namespace drover::spec {
namespace {

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

// The item's kind, for messages.
std::string KindOf(const nlohmann::json& j) {
  if (j.is_array()) return "a list";
  if (j.is_object()) return "an object";
  if (j.is_null()) return "null";
  return "a value";
}

// A short quote of `text` for a message: a bad output may be large.
std::string Excerpt(std::string_view text) {
  constexpr size_t kShown = 60;
  if (text.size() <= kShown) return internal::Quoted(text);
  return internal::Quoted(text.substr(0, kShown)) + "...";
}

}  // namespace

Result<MatrixValues> ParseMatrixValues(std::string_view text, bool several_keys) {
  const nlohmann::json list =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (list.is_discarded()) {
    return InvalidArgument(
        "it is not JSON (a dynamic matrix takes a JSON list such as "
        "[\"a\",\"b\"]), got " +
        Excerpt(text));
  }
  if (!list.is_array()) {
    return InvalidArgument(
        "it is not a JSON list (a dynamic matrix takes one such as "
        "[\"a\",\"b\"]), got " +
        Excerpt(text));
  }
  if (list.empty()) {
    return InvalidArgument("it is an empty list: the matrix key has no values");
  }
  MatrixValues out;
  out.values.reserve(list.size());
  out.json.reserve(list.size());
  std::unordered_set<std::string> seen;
  seen.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& item = list[i];
    const std::string number = "item " + std::to_string(i + 1);
    if (!item.is_string() && !item.is_number() && !item.is_boolean()) {
      return InvalidArgument(
          number + " is " + KindOf(item) +
          ": a dynamic matrix's values are strings, numbers and booleans");
    }
    std::string json = item.dump(-1, ' ', false, kReplace);
    std::string value = item.is_string() ? item.get<std::string>() : json;
    // The rules of a static matrix's values: they become part of instance
    // names, which stay one line and split back at the commas.
    if (std::any_of(value.begin(), value.end(), [](char c) {
          return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
        })) {
      return InvalidArgument(
          number + " " + Excerpt(value) +
          " holds a control character (it becomes part of a task name)");
    }
    if (several_keys && value.find(',') != std::string::npos) {
      return InvalidArgument(
          number + " " + Excerpt(value) +
          " holds ',' while the matrix has several keys (instance names "
          "would be ambiguous)");
    }
    if (!seen.insert(value).second) {
      return InvalidArgument(number + " " + Excerpt(value) + " is a duplicate");
    }
    out.values.push_back(std::move(value));
    out.json.push_back(std::move(json));
  }
  return out;
}

uint64_t DynamicInstanceCount(const TaskSpec& placeholder,
                              const std::vector<MatrixValues>& dynamic) {
  const DynamicMatrix& d = *placeholder.dynamic;
  uint64_t product = 1;
  auto times = [&product](uint64_t n) {
    if (__builtin_mul_overflow(product, n, &product)) {
      product = std::numeric_limits<uint64_t>::max();
    }
  };
  for (size_t k = 0; k < d.keys.size(); ++k) {
    const bool is_dynamic =
        std::any_of(d.sources.begin(), d.sources.end(),
                    [k](const DynamicMatrix::Source& s) { return s.key == k; });
    if (!is_dynamic) times(d.values[k].values.size());
  }
  for (const MatrixValues& v : dynamic) times(v.values.size());
  return product;
}

std::vector<TaskSpec> ExpandDynamic(const TaskSpec& placeholder,
                                    const std::vector<MatrixValues>& dynamic) {
  const DynamicMatrix& d = *placeholder.dynamic;
  std::vector<const std::vector<std::string>*> values(d.keys.size());
  std::vector<const std::vector<std::string>*> json(d.keys.size());
  for (size_t k = 0; k < d.keys.size(); ++k) {
    values[k] = &d.values[k].values;
    json[k] = &d.values[k].json;
  }
  for (size_t s = 0; s < d.sources.size() && s < dynamic.size(); ++s) {
    values[d.sources[s].key] = &dynamic[s].values;
    json[d.sources[s].key] = &dynamic[s].json;
  }
  TaskSpec proto = placeholder;
  proto.dynamic.reset();
  proto.deferred = d.deferred;
  proto.fingerprint = 0;  // each instance gets its own
  proto.payload.clear();
  proto.summary.clear();
  std::vector<TaskSpec> out;
  const uint64_t count = DynamicInstanceCount(placeholder, dynamic);
  out.reserve(count);
  internal::AppendInstances(placeholder.base_name, d.keys, values, json, *d.compiled,
                            d.deferred.get(), count, std::move(proto), &out);
  return out;
}

std::string FanoutWaitReason(const TaskSpec& placeholder) {
  std::string reason = "fan-out waits for ";
  if (!placeholder.dynamic) return reason + "its upstream";
  const auto& sources = placeholder.dynamic->sources;
  for (size_t s = 0; s < sources.size(); ++s) {
    const OutputRef& ref = sources[s].ref;
    if (s > 0) reason += " and ";
    std::string task = ref.task;
    if (!ref.select.empty()) {
      task += '[';
      for (size_t k = 0; k < ref.select.size(); ++k) {
        task += (k > 0 ? "," : "") + ref.select[k].first + "=" + ref.select[k].second;
      }
      task += ']';
    }
    reason += ref.key == "result" ? task + "'s result" : task + "'s output " + ref.key;
  }
  return reason;
}

}  // namespace drover::spec
