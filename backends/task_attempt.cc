// TaskAttempt's one helper, `${services.NAME.port|host}` expansion, and
// AttemptFailure.
#include <string>
#include <string_view>
#include <utility>

#include "backends/backend.h"

namespace drover {

AttemptOutcome AttemptFailure(FailureReason reason, std::string message) {
  AttemptOutcome o;
  o.reason = reason;
  o.message = std::move(message);
  return o;
}

namespace {
constexpr std::string_view kOpen = "${services.";
}  // namespace

void TaskAttempt::ExpandServiceRefsIn(std::string* text) const {
  // Without services nothing is expanded: the text is not even looked at.
  if (services.empty() || text->find(kOpen) == std::string::npos) return;
  *text = ExpandServiceRefs(*text);
}

std::string TaskAttempt::ExpandServiceRefs(std::string_view text) const {
  if (services.empty() || text.find(kOpen) == std::string_view::npos)
    return std::string(text);  // the common case
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (true) {
    const size_t at = text.find(kOpen, i);
    if (at == std::string_view::npos) break;
    const size_t close = text.find('}', at + kOpen.size());
    if (close == std::string_view::npos) break;
    const std::string_view inner =
        text.substr(at + kOpen.size(), close - at - kOpen.size());
    const size_t dot = inner.rfind('.');
    out.append(text.substr(i, at - i));
    i = close + 1;
    const auto found = dot == std::string_view::npos
                           ? services.end()
                           : services.find(std::string(inner.substr(0, dot)));
    const std::string_view field =
        dot == std::string_view::npos ? std::string_view() : inner.substr(dot + 1);
    if (found != services.end() && field == "port") {
      out += std::to_string(found->second.port);
    } else if (found != services.end() && field == "host") {
      out += found->second.host;
    } else {
      out.append(text.substr(at, close + 1 - at));  // not ours: leave it
    }
  }
  out.append(text.substr(i));
  return out;
}

}  // namespace drover
