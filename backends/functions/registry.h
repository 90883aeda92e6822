// FunctionRegistry: the functions a threads backend (or a `cow` fork pool)
// can run, by name: the built-ins plus those of loaded plugins.
//
// Ownership: a plugin's functions keep their library loaded (each holds a
// shared reference to it), so a function can run for as long as anyone
// holds a copy of it, even after the registry is gone.
//
// Thread-safety: Add is not thread-safe; build the registry first, then
// share it as `const` (Find, Names and Invoke may be called from any number
// of threads at once). To add functions to a registry in use, copy it, add
// to the copy and publish the copy (copies share the functions and so the
// plugin libraries).
#ifndef DROVER_BACKENDS_FUNCTIONS_REGISTRY_H_
#define DROVER_BACKENDS_FUNCTIONS_REGISTRY_H_

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "backends/functions/function.h"
#include "core/base/outcome.h"
#include "core/base/status.h"

namespace drover {

class FunctionRegistry {
 public:
  FunctionRegistry() = default;
  FunctionRegistry(FunctionRegistry&&) = default;
  FunctionRegistry& operator=(FunctionRegistry&&) = default;
  FunctionRegistry(const FunctionRegistry&) = default;
  FunctionRegistry& operator=(const FunctionRegistry&) = default;

  // Registers `fn` under `name`. `source` says where it comes from, for
  // messages: "built-in", "plugin /path/to/lib.so". Fails with
  // kAlreadyExists naming both sources when the name is taken, and with
  // kInvalidArgument when the name is not 1-128 characters of
  // [A-Za-z0-9_.:-] or fn is empty. On failure the registry is unchanged.
  Status Add(std::string name, Function fn, std::string source);

  // Whether Add(name, ...) would fail, and why (without adding).
  Status CheckName(std::string_view name, std::string_view source) const;

  // Plugin files whose functions are in this registry, by the identity
  // LoadPlugin gives them (the canonical path), so that a plugin named by
  // both a worker's config and a job is loaded once.
  void MarkPluginLoaded(std::string identity) { plugins_.insert(std::move(identity)); }
  bool IsPluginLoaded(std::string_view identity) const {
    return plugins_.find(identity) != plugins_.end();
  }

  // The function registered under `name`, or nullptr.
  const Function* Find(std::string_view name) const;
  // Where `name` came from ("built-in", "plugin ..."), or "" if unknown.
  std::string SourceOf(std::string_view name) const;
  // Every registered name, sorted.
  std::vector<std::string> Names() const;
  size_t size() const { return entries_.size(); }

  // A call ready to run: its function found and its args parsed. When
  // preparing failed, fn is null and `failure` says why (kLaunchFailed).
  struct Prepared {
    const Function* fn = nullptr;
    nlohmann::json args;
    AttemptOutcome failure;
    bool ok() const { return fn != nullptr; }
  };

  // The first half of Invoke: finds `name` and parses `args_json`. A
  // backend calls it before reporting the attempt as started, so that a
  // launch failure is reported without OnStarted, as for a process.
  Prepared Prepare(std::string_view name, std::string_view args_json) const;
  // The second half: calls a Prepared call (p.ok()) and maps how it ended.
  AttemptOutcome Run(std::string_view name, const Prepared& p, const CancelToken& token) const;

  // Runs function `name` on `args_json` (empty text counts as null) and
  // maps how it ended to an outcome (wall time and the rest are the
  // caller's):
  //   - success: reason kNone, exit_code 0, result_json = the result;
  //   - unknown name: kLaunchFailed, "no function 'x' (known: a, b, ...)";
  //   - args that are not JSON: kLaunchFailed, "bad args for 'x': <parse error>";
  //   - an error Status or an exception: kExit, exit_code 1, message = its
  //     text (so `retries:` applies and the user sees why);
  //   - a result that cannot be serialised (invalid UTF-8): kExit, as above.
  // Never throws.
  AttemptOutcome Invoke(std::string_view name, std::string_view args_json,
                        const CancelToken& token) const;

 private:
  struct Entry {
    Function fn;
    std::string source;
  };
  std::map<std::string, Entry, std::less<>> entries_;
  std::set<std::string, std::less<>> plugins_;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_FUNCTIONS_REGISTRY_H_
