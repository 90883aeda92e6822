#include "core/base/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>
#include <string>

namespace drover {

void SetupLogging(std::string_view level, spdlog::level::level_enum fallback) {
  std::string name(level);
  if (name.empty()) {
    if (const char* env = std::getenv("DROVER_LOG")) name = env;
  }
  auto lvl = name.empty() ? fallback : spdlog::level::from_str(name);
  auto logger = spdlog::stderr_logger_mt("drover");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(lvl);
}

}  // namespace drover
