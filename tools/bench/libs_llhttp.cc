#include "tools/bench/libs_llhttp.h"

#include <llhttp.h>

#include <string>

namespace drover::bench {
namespace {

struct Run {
  std::string_view body;
  bool complete = false;
  bool keep_alive = false;
};

const llhttp_settings_t kSettings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_body = [](llhttp_t* p, const char* at, size_t n) {
    // A Content-Length body in one buffer comes in one call.
    static_cast<Run*>(p->data)->body = std::string_view(at, n);
    return 0;
  };
  s.on_message_complete = [](llhttp_t* p) {
    auto* run = static_cast<Run*>(p->data);
    run->complete = true;
    run->keep_alive = llhttp_should_keep_alive(p) != 0;
    return static_cast<int>(HPE_PAUSED);  // one request at a time
  };
  return s;
}();

}  // namespace

const char* LlhttpVersion() {
  static const std::string version = std::to_string(LLHTTP_VERSION_MAJOR) + "." +
                                     std::to_string(LLHTTP_VERSION_MINOR) + "." +
                                     std::to_string(LLHTTP_VERSION_PATCH);
  return version.c_str();
}

bool LlhttpParse(std::string_view in, size_t* size, std::string_view* body,
                 bool* keep_alive) {
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &kSettings);
  Run run;
  parser.data = &run;
  const llhttp_errno_t err = llhttp_execute(&parser, in.data(), in.size());
  if (!run.complete || err != HPE_PAUSED) return false;
  *size = static_cast<size_t>(llhttp_get_error_pos(&parser) - in.data());
  *body = run.body;
  *keep_alive = run.keep_alive;
  return true;
}

}  // namespace drover::bench
