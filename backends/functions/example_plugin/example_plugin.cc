// An example drover plugin (include/drover/plugin.h, ABI 1) with two
// functions:
//   reverse  {"string": "héllo"} | "héllo"   -> "olléh" (by code point)
//   sum      {"numbers": [1, 2.5]} | [1, 2.5] -> 3.5 (an integer when all are)
//
// Built as a MODULE library (build/plugins/drover_example.so); load it with
// `plugins:` in a job spec or the worker config. Written in C++ with
// nlohmann::json, but only the C ABI crosses the library boundary: no
// exception escapes a function, and only drover_plugin_entry is exported
// (the library is built with -fvisibility=hidden).
#include <cstdint>
#include <exception>
#include <string>

#include <nlohmann/json.hpp>

#include "drover/plugin.h"

namespace {

using nlohmann::json;

// Hands `value` back to drover as the call's result.
void SetJson(const drover_call* call, const json& value) {
  const std::string text = value.dump();
  call->set_result(call, text.data(), text.size());  // drover copies it
}

int Fail(const drover_call* call, const std::string& message) {
  call->set_error(call, message.c_str());  // drover copies it
  return 1;
}

// Reverses a UTF-8 string by code point (drover has validated the UTF-8).
std::string ReverseUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    // Continuation bytes are 10xxxxxx: step back to the lead byte.
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    out.append(s, start, end - start);
    end = start;
  }
  return out;
}

int Reverse(const drover_call* call) {
  try {
    const json args = json::parse(call->args_json, call->args_json + call->args_len);
    const json* s = &args;
    if (args.is_object() && args.contains("string")) s = &args["string"];
    if (!s->is_string()) return Fail(call, R"(reverse: args must be {"string": S} or a string)");
    SetJson(call, ReverseUtf8(s->get<std::string>()));
    return 0;
  } catch (const std::exception& e) {
    return Fail(call, std::string("reverse: ") + e.what());
  }
}

int Sum(const drover_call* call) {
  try {
    const json args = json::parse(call->args_json, call->args_json + call->args_len);
    const json* list = &args;
    if (args.is_object() && args.contains("numbers")) list = &args["numbers"];
    if (!list->is_array()) {
      return Fail(call, R"(sum: args must be {"numbers": [...]} or an array of numbers)");
    }
    int64_t int_sum = 0;
    double float_sum = 0;
    bool integral = true;
    for (const json& v : *list) {
      if (!v.is_number()) return Fail(call, "sum: not a number: " + v.dump());
      float_sum += v.get<double>();
      // Stay exact while every term is an integer and nothing overflows.
      if (integral && (v.is_number_float() ||
                       (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) ||
                       __builtin_add_overflow(int_sum, v.get<int64_t>(), &int_sum))) {
        integral = false;
      }
    }
    SetJson(call, integral ? json(int_sum) : json(float_sum));
    return 0;
  } catch (const std::exception& e) {
    return Fail(call, std::string("sum: ") + e.what());
  }
}

const drover_function kFunctions[] = {
    {"reverse", Reverse},
    {"sum", Sum},
};

const drover_plugin kPlugin = {
    DROVER_PLUGIN_ABI_VERSION,
    "example",
    sizeof kFunctions / sizeof kFunctions[0],
    kFunctions,
};

}  // namespace

extern "C" DROVER_PLUGIN_EXPORT const drover_plugin* drover_plugin_entry(void) {
  return &kPlugin;
}
