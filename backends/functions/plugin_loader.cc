#include "backends/functions/plugin_loader.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <system_error>
#include <utility>

#include "backends/functions/builtins.h"
#include "drover/plugin.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A dlopen()ed library, closed when the last function that uses it is gone.
class Library {
 public:
  explicit Library(void* handle) : handle_(handle) {}
  ~Library() { ::dlclose(handle_); }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  void* handle() const { return handle_; }

 private:
  void* handle_;
};

// What one call of a plugin function collected through its callbacks. The
// plugin sees it only as drover_call::host.
struct HostCall {
  const CancelToken* token = nullptr;
  std::string result;
  bool has_result = false;
  std::string error;
  bool has_error = false;
};

HostCall& Host(const drover_call* call) { return *static_cast<HostCall*>(call->host); }

int CallCancelled(const drover_call* call) { return Host(call).token->cancelled() ? 1 : 0; }

int CallSleepMs(const drover_call* call, uint64_t ms) {
  // Clamp so that the nanosecond count cannot overflow (about 100 years).
  constexpr uint64_t kMaxMs = uint64_t{3'000'000'000'000};
  const Duration d = std::chrono::milliseconds(std::min(ms, kMaxMs));
  return Host(call).token->SleepFor(d) ? 0 : 1;
}

int64_t CallRemainingMs(const drover_call* call) {
  const SteadyTime deadline = Host(call).token->deadline();
  if (deadline == SteadyTime::max()) return -1;
  const SteadyTime now = std::chrono::steady_clock::now();
  if (deadline <= now) return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
}

void CallSetResult(const drover_call* call, const char* json_text, size_t len) {
  HostCall& host = Host(call);
  host.result.assign(json_text == nullptr ? "" : json_text, json_text == nullptr ? 0 : len);
  host.has_result = true;
}

void CallSetError(const drover_call* call, const char* message) {
  HostCall& host = Host(call);
  host.error = message == nullptr ? "" : message;
  host.has_error = true;
}

// Adapts one plugin function to a drover Function.
Function Wrap(std::shared_ptr<Library> library, drover_function_fn fn, std::string name,
              std::string source) {
  return [library = std::move(library), fn, name = std::move(name),
          source = std::move(source)](const json& args,
                                      const CancelToken& token) -> Result<json> {
    const std::string args_text = args.dump();
    HostCall host;
    host.token = &token;
    drover_call call{};
    call.args_json = args_text.data();
    call.args_len = args_text.size();
    call.cancelled = CallCancelled;
    call.sleep_ms = CallSleepMs;
    call.remaining_ms = CallRemainingMs;
    call.set_result = CallSetResult;
    call.set_error = CallSetError;
    call.host = &host;

    const int rc = fn(&call);
    if (rc != 0) {
      return Status(StatusCode::kFailedPrecondition,
                    host.has_error ? host.error
                                   : "function '" + name + "' failed with code " +
                                         std::to_string(rc));
    }
    if (!host.has_result) return json(nullptr);
    try {
      return json::parse(host.result);
    } catch (const json::exception& e) {
      return Status(StatusCode::kFailedPrecondition, source + ": function '" + name +
                                                         "' returned invalid JSON: " + e.what());
    }
  };
}

std::string DlError() {
  const char* e = ::dlerror();
  return e == nullptr ? "unknown dlopen error" : e;
}

}  // namespace

Status LoadPlugin(const fs::path& path, FunctionRegistry& registry) {
  std::error_code ec;
  const fs::path file = fs::absolute(path, ec);
  if (ec) return InvalidArgument("plugin " + path.string() + ": " + ec.message());
  const std::string where = "plugin " + file.string();
  if (!fs::exists(file, ec)) return NotFound(where + ": no such file");
  const fs::path identity = fs::canonical(file, ec);
  if (ec) return InvalidArgument(where + ": " + ec.message());
  if (registry.IsPluginLoaded(identity.string())) return Status::Ok();

  void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return InvalidArgument(where + ": cannot load: " + DlError());
  auto library = std::make_shared<Library>(handle);

  ::dlerror();  // clear, so that a NULL from dlsym can be told from an error
  void* symbol = ::dlsym(library->handle(), DROVER_PLUGIN_ENTRY_SYMBOL);
  if (symbol == nullptr) {
    return InvalidArgument(where + ": no entry symbol '" DROVER_PLUGIN_ENTRY_SYMBOL
                           "' (not a drover plugin, or the symbol is not exported: "
                           "declare it with DROVER_PLUGIN_EXPORT)");
  }
  // POSIX guarantees that a dlsym result converts to a function pointer.
  const auto entry = reinterpret_cast<drover_plugin_entry_fn>(symbol);
  const drover_plugin* plugin = entry();
  if (plugin == nullptr) return InvalidArgument(where + ": " DROVER_PLUGIN_ENTRY_SYMBOL "() returned NULL");
  if (plugin->abi_version != DROVER_PLUGIN_ABI_VERSION) {
    return InvalidArgument(where + " was built for plugin ABI " +
                           std::to_string(plugin->abi_version) + "; this drover speaks " +
                           std::to_string(DROVER_PLUGIN_ABI_VERSION));
  }
  if (plugin->function_count > 0 && plugin->functions == nullptr) {
    return InvalidArgument(where + ": lists " + std::to_string(plugin->function_count) +
                           " functions but no array");
  }

  // Check everything before registering anything.
  std::set<std::string, std::less<>> seen;
  for (size_t i = 0; i < plugin->function_count; ++i) {
    const drover_function& f = plugin->functions[i];
    if (f.name == nullptr) {
      return InvalidArgument(where + ": function #" + std::to_string(i + 1) + " has no name");
    }
    if (f.fn == nullptr) {
      return InvalidArgument(where + ": function '" + f.name + "' has no function pointer");
    }
    if (!seen.insert(f.name).second) {
      return AlreadyExists("function '" + std::string(f.name) + "' is defined twice: by " +
                           where + " and by " + where);
    }
    DROVER_RETURN_IF_ERROR(registry.CheckName(f.name, where));
  }
  for (size_t i = 0; i < plugin->function_count; ++i) {
    const drover_function& f = plugin->functions[i];
    DROVER_RETURN_IF_ERROR(registry.Add(f.name, Wrap(library, f.fn, f.name, where), where));
  }
  registry.MarkPluginLoaded(identity.string());
  return Status::Ok();
}

Result<std::shared_ptr<const FunctionRegistry>> BuildFunctionRegistry(
    const std::vector<fs::path>& plugins) {
  auto registry = std::make_shared<FunctionRegistry>();
  DROVER_RETURN_IF_ERROR(RegisterBuiltins(*registry));
  for (const fs::path& plugin : plugins) DROVER_RETURN_IF_ERROR(LoadPlugin(plugin, *registry));
  return std::shared_ptr<const FunctionRegistry>(std::move(registry));
}

}  // namespace drover
