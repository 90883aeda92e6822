#include "core/protocol/hello_limits.h"

#include <string_view>

#include "core/spec/text.h"

namespace drover::protocol {
namespace {

constexpr size_t kMaxHelloString = 256;   // name, hostname, version, a label value
constexpr size_t kMaxHelloKey = 128;      // a label key, a service or pool name
constexpr size_t kMaxHelloBackends = 64;  // entries of slots and of prefetch
constexpr size_t kMaxHelloLabels = 64;
constexpr size_t kMaxHelloNames = 256;  // entries of services and of pools

// Empty when `s` may be shown: at most `max` bytes, no control character
// (the rule of job names in a spec: C0, DEL and C1).
std::string TextProblem(std::string_view s, size_t max) {
  if (s.size() > max) {
    return "is " + std::to_string(s.size()) + " bytes, more than " + std::to_string(max);
  }
  if (spec::internal::HasControlCharacter(s)) return "has a control character";
  return {};
}

}  // namespace

std::string HelloProblem(const wire::Hello& h) {
  auto text = [](const std::string& what, std::string_view s, size_t max) -> std::string {
    const std::string p = TextProblem(s, max);
    return p.empty() ? p : what + " " + p;
  };
  auto count = [](const char* what, size_t n, size_t max) -> std::string {
    if (n <= max) return {};
    return std::string(what) + " has " + std::to_string(n) + " entries, more than " +
           std::to_string(max);
  };
  std::string p;
  if (!(p = text("name", h.name(), kMaxHelloString)).empty()) return p;
  if (!(p = text("hostname", h.hostname(), kMaxHelloString)).empty()) return p;
  if (!(p = text("version", h.version(), kMaxHelloString)).empty()) return p;
  if (!(p = count("slots", h.slots_size(), kMaxHelloBackends)).empty()) return p;
  if (!(p = count("prefetch", h.prefetch_size(), kMaxHelloBackends)).empty()) return p;
  if (!(p = count("labels", h.labels_size(), kMaxHelloLabels)).empty()) return p;
  if (!(p = count("services", h.services_size(), kMaxHelloNames)).empty()) return p;
  if (!(p = count("pools", h.pools_size(), kMaxHelloNames)).empty()) return p;
  for (const auto& [backend, n] : h.slots()) {
    if (!(p = text("a slots backend", backend, kMaxHelloKey)).empty()) return p;
  }
  for (const auto& [backend, n] : h.prefetch()) {
    if (!(p = text("a prefetch backend", backend, kMaxHelloKey)).empty()) return p;
  }
  for (const auto& [k, v] : h.labels()) {
    if (!(p = text("a label key", k, kMaxHelloKey)).empty()) return p;
    if (!(p = text("the value of label " + k, v, kMaxHelloString)).empty()) return p;
  }
  for (const auto& name : h.services()) {
    if (!(p = text("a service name", name, kMaxHelloKey)).empty()) return p;
  }
  for (const auto& name : h.pools()) {
    if (!(p = text("a pool name", name, kMaxHelloKey)).empty()) return p;
  }
  return {};
}

}  // namespace drover::protocol
