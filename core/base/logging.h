// Logging set-up. drover logs through spdlog; daemons log to stderr, and the
// level comes from --log-level or DROVER_LOG (trace, debug, info, warn,
// error, off).
#ifndef DROVER_CORE_BASE_LOGGING_H_
#define DROVER_CORE_BASE_LOGGING_H_

#include <spdlog/spdlog.h>

#include <string_view>

namespace drover {

// Configures the default logger: stderr, "[time] [level] [component] msg".
// level: a spdlog level name; empty means DROVER_LOG or else `fallback`.
void SetupLogging(std::string_view level, spdlog::level::level_enum fallback);

}  // namespace drover

#endif  // DROVER_CORE_BASE_LOGGING_H_
