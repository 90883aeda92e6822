// Loads plugins: shared libraries that export functions through the C ABI
// of include/drover/plugin.h.
#ifndef DROVER_BACKENDS_FUNCTIONS_PLUGIN_LOADER_H_
#define DROVER_BACKENDS_FUNCTIONS_PLUGIN_LOADER_H_

#include <filesystem>
#include <memory>
#include <vector>

#include "backends/functions/registry.h"
#include "core/base/status.h"

namespace drover {

// Loads the plugin at `path` (made absolute, so no library search path is
// involved) and registers each of its functions with source "plugin PATH".
// The library stays loaded for as long as one of its functions (or a copy
// of one) exists. A file already loaded into `registry` (the same file
// under any path: symlinks are resolved) is not loaded again: Ok.
//
// All or nothing: on failure nothing of the plugin is registered. Every
// error names the file:
//   - kNotFound: the file does not exist;
//   - kInvalidArgument: dlopen failed (its text), the entry symbol is
//     missing, the entry returned NULL, the plugin was built for another
//     ABI ("plugin X.so was built for plugin ABI 2; this drover speaks 1"),
//     a function has no name, a bad name or no function pointer;
//   - kAlreadyExists: a name is taken, naming both sources.
Status LoadPlugin(const std::filesystem::path& path, FunctionRegistry& registry);

// The registry a threads backend or a `cow` pool runs: the built-ins, then
// the functions of each plugin in order. Fails on the first plugin that
// fails to load (see LoadPlugin).
Result<std::shared_ptr<const FunctionRegistry>> BuildFunctionRegistry(
    const std::vector<std::filesystem::path>& plugins);

}  // namespace drover

#endif  // DROVER_BACKENDS_FUNCTIONS_PLUGIN_LOADER_H_
