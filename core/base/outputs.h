// Task outputs: the small named values an attempt hands to the tasks that
// need it (docs/spec.md, "Outputs"). A spawn task writes them to
// $DROVER_OUTPUT (worker/outputs.h parses that file), a threads or fork
// task's result is its output `result`, a cluster task's response gives
// `status` and `body`. They travel in RESULT.outputs, are stored with the
// attempt and its task as a JSON object, and are interpolated into
// dependents at dispatch (core/spec/outputs.h).
#ifndef DROVER_CORE_BASE_OUTPUTS_H_
#define DROVER_CORE_BASE_OUTPUTS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace drover {

// Key -> value, sorted by key; keys unique.
using Outputs = std::map<std::string, std::string>;

// The caps of one attempt's outputs (docs/spec.md, "Limits"): past either
// the attempt fails with reason bad-outputs.
inline constexpr size_t kMaxOutputBytes = 1u << 20;  // keys + values, in bytes
inline constexpr size_t kMaxOutputKeys = 1000;

// Whether `key` may name an output: 1 to 128 of [A-Za-z0-9_-], not
// starting with '-'.
bool ValidOutputKey(std::string_view key);

// Bytes of keys plus values.
size_t OutputsSize(const Outputs& outputs);

// Empty when `outputs` is within the caps, else why not ("outputs are
// 1,048,600 bytes, more than the cap of 1,048,576").
std::string CheckOutputCaps(const Outputs& outputs);

// Appends `s` to `out` as a JSON string, escaped as nlohmann::json's dump
// escapes it (ensure_ascii off: \" \\ \b \f \n \r \t, \u00xx for the other
// control characters, everything else as it is). False, with `out` in an
// unspecified state, when `s` is not valid UTF-8.
bool AppendUtf8JsonString(std::string* out, std::string_view s);

// The JSON object {"key":"value",...} (keys sorted); "" for no outputs, as
// the store keeps it.
std::string OutputsToJson(const Outputs& outputs);
// The inverse; "" gives no outputs. Nullopt when `json` is not an object of
// strings.
std::optional<Outputs> OutputsFromJson(std::string_view json);

// The JSON form of an output value in a typed place (a whole `args` or
// `message` value, a dynamic matrix): a value that is a JSON number, true,
// false, null, an array or an object is that JSON (compacted); anything
// else is a JSON string of the value.
std::string OutputJson(std::string_view value);

}  // namespace drover

#endif  // DROVER_CORE_BASE_OUTPUTS_H_
