// Logging set-up. drover logs through spdlog; daemons log to stderr, and the
// level comes from --log-level or DROVER_LOG (trace, debug, info, warn,
// error, off).
#ifndef DROVER_CORE_BASE_LOGGING_H_
#define DROVER_CORE_BASE_LOGGING_H_

#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <string_view>

namespace drover {

enum class LogFormat {
  kText,  // "2026-12-02T09:54:15.123 info message"
  // One JSON object a line, for log shippers: {"time":"2026-12-02T09:54:15.123Z",
  // "level":"info","logger":"drover","message":"..."}; the time in UTC, the
  // message escaped as JSON strings are (RFC 8259: quote, backslash,
  // control characters as \uXXXX; bytes that are not UTF-8 replaced).
  kJson,
};

// "text" or "json"; nullopt for anything else.
std::optional<LogFormat> ParseLogFormat(std::string_view name);

// Configures the default logger: stderr, in `format`.
// level: a spdlog level name; empty means DROVER_LOG or else `fallback`.
void SetupLogging(std::string_view level, spdlog::level::level_enum fallback,
                  LogFormat format = LogFormat::kText);

// The JSON line of one log record (LogFormat::kJson), newline included.
// Exposed for tests.
std::string JsonLogLine(const spdlog::details::log_msg& msg);

}  // namespace drover

#endif  // DROVER_CORE_BASE_LOGGING_H_
