#include "backends/functions/registry.h"

#include <exception>
#include <string>
#include <utility>

namespace drover {
namespace {

constexpr size_t kMaxNameLength = 128;

bool ValidNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == ':' || c == '-';
}

// "null" and empty text are by far the most common args (every `noop`
// without args); skipping the parser for them keeps a tiny task tiny.
bool IsNullText(std::string_view text) {
  size_t b = 0, e = text.size();
  while (b < e && (text[b] == ' ' || text[b] == '\n' || text[b] == '\t' || text[b] == '\r')) ++b;
  while (e > b && (text[e - 1] == ' ' || text[e - 1] == '\n' || text[e - 1] == '\t' ||
                   text[e - 1] == '\r')) {
    --e;
  }
  text = text.substr(b, e - b);
  return text.empty() || text == "null";
}

AttemptOutcome Failed(FailureReason reason, std::string message) {
  AttemptOutcome o;
  o.reason = reason;
  if (reason == FailureReason::kExit) o.exit_code = 1;
  o.message = std::move(message);
  return o;
}

}  // namespace

Status FunctionRegistry::CheckName(std::string_view name, std::string_view source) const {
  if (name.empty() || name.size() > kMaxNameLength) {
    return InvalidArgument("function name '" + std::string(name) + "' from " +
                           std::string(source) + " must be 1 to 128 characters long");
  }
  for (char c : name) {
    if (!ValidNameChar(c)) {
      return InvalidArgument("function name '" + std::string(name) + "' from " +
                             std::string(source) +
                             " may only use letters, digits and _ . : -");
    }
  }
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    return AlreadyExists("function '" + std::string(name) + "' is defined twice: by " +
                         it->second.source + " and by " + std::string(source));
  }
  return Status::Ok();
}

Status FunctionRegistry::Add(std::string name, Function fn, std::string source) {
  DROVER_RETURN_IF_ERROR(CheckName(name, source));
  if (!fn) return InvalidArgument("function '" + name + "' from " + source + " is empty");
  entries_.emplace(std::move(name), Entry{std::move(fn), std::move(source)});
  return Status::Ok();
}

const Function* FunctionRegistry::Find(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second.fn;
}

std::string FunctionRegistry::SourceOf(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? std::string() : it->second.source;
}

std::vector<std::string> FunctionRegistry::Names() const {
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& [name, _] : entries_) names.push_back(name);
  return names;
}

FunctionRegistry::Prepared FunctionRegistry::Prepare(std::string_view name,
                                                     std::string_view args_json) const {
  Prepared p;
  const Function* fn = Find(name);
  if (fn == nullptr) {
    std::string known;
    for (const auto& [n, _] : entries_) {
      if (!known.empty()) known += ", ";
      known += n;
    }
    p.failure = Failed(FailureReason::kLaunchFailed,
                       "no function '" + std::string(name) + "' (known: " + known + ")");
    return p;
  }
  if (!IsNullText(args_json)) {
    try {
      p.args = nlohmann::json::parse(args_json);
    } catch (const std::exception& e) {
      p.failure = Failed(FailureReason::kLaunchFailed,
                         "bad args for '" + std::string(name) + "': " + e.what());
      return p;
    }
  }
  p.fn = fn;
  return p;
}

AttemptOutcome FunctionRegistry::Run(std::string_view name, const Prepared& p,
                                     const CancelToken& token) const {
  if (!p.ok()) return p.failure;
  try {
    Result<nlohmann::json> result = (*p.fn)(p.args, token);
    if (!result.ok()) return Failed(FailureReason::kExit, result.status().message());
    AttemptOutcome o;
    o.exit_code = 0;
    // Strict UTF-8: a result that is not valid UTF-8 fails here, with the
    // function's name, rather than somewhere downstream.
    try {
      // null is every noop's result: skip the serializer's set-up for it.
      o.result_json = result->is_null() ? "null" : result->dump();
    } catch (const nlohmann::json::exception& e) {
      return Failed(FailureReason::kExit, "function '" + std::string(name) +
                                              "' returned a result that is not valid JSON: " +
                                              e.what());
    }
    return o;
  } catch (const std::exception& e) {
    return Failed(FailureReason::kExit, e.what());
  } catch (...) {
    return Failed(FailureReason::kExit,
                  "function '" + std::string(name) + "' threw a non-standard exception");
  }
}

AttemptOutcome FunctionRegistry::Invoke(std::string_view name, std::string_view args_json,
                                        const CancelToken& token) const {
  const Prepared p = Prepare(name, args_json);
  if (!p.ok()) return p.failure;
  return Run(name, p, token);
}

}  // namespace drover
