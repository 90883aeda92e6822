#include "backends/cluster/service_refs.h"

namespace drover::cluster {
namespace {

constexpr std::string_view kOpen = "${services.";

void ReplaceIn(const std::map<std::string, ServiceAddress>& addresses, std::string* text) {
  if (text->find(kOpen) == std::string::npos) return;  // the common case: no copy
  *text = ReplaceServiceRefs(*text, addresses);
}

}  // namespace

std::string ConnectableHost(std::string_view listen_host) {
  if (listen_host.empty() || listen_host == "0.0.0.0") return "127.0.0.1";
  if (listen_host == "::" || listen_host == "[::]") return "::1";
  return std::string(listen_host);
}

std::string ReplaceServiceRefs(std::string_view text,
                               const std::map<std::string, ServiceAddress>& addresses) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (true) {
    const size_t at = text.find(kOpen, i);
    if (at == std::string_view::npos) break;
    const size_t close = text.find('}', at + kOpen.size());
    if (close == std::string_view::npos) break;
    const std::string_view inner = text.substr(at + kOpen.size(), close - at - kOpen.size());
    const size_t dot = inner.rfind('.');
    out.append(text.substr(i, at - i));
    i = close + 1;
    const auto found = dot == std::string_view::npos
                           ? addresses.end()
                           : addresses.find(std::string(inner.substr(0, dot)));
    const std::string_view field =
        dot == std::string_view::npos ? std::string_view() : inner.substr(dot + 1);
    if (found != addresses.end() && field == "port") {
      out += std::to_string(found->second.port);
    } else if (found != addresses.end() && field == "host") {
      out += found->second.host;
    } else {
      out.append(text.substr(at, close + 1 - at));  // not ours: leave it
    }
  }
  out.append(text.substr(i));
  return out;
}

void ReplaceServiceRefs(const std::map<std::string, ServiceAddress>& addresses,
                        TaskAttempt* a) {
  for (std::string& arg : a->argv) ReplaceIn(addresses, &arg);
  for (auto& [name, value] : a->env) ReplaceIn(addresses, &value);
  ReplaceIn(addresses, &a->cwd);
  ReplaceIn(addresses, &a->args_json);
  ReplaceIn(addresses, &a->message_json);
  ReplaceIn(addresses, &a->request.path);
  for (auto& [name, value] : a->request.headers) ReplaceIn(addresses, &value);
  ReplaceIn(addresses, &a->request.body);
}

}  // namespace drover::cluster
