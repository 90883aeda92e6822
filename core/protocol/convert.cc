#include "core/protocol/convert.h"

#include <algorithm>
#include <chrono>

namespace drover::protocol {
namespace {

uint64_t Micros(Duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return us > 0 ? static_cast<uint64_t>(us) : 0;
}

// A RESULT comes from a peer: a time longer than a Duration holds (about
// 292 years) is clamped, not overflowed.
Duration FromMicros(uint64_t us) {
  constexpr auto kMax = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Duration::max()).count());
  return std::chrono::microseconds(static_cast<int64_t>(std::min(us, kMax)));
}

}  // namespace

wire::Result OutcomeToWire(uint64_t id, const std::string& worker,
                           const AttemptOutcome& o) {
  wire::Result r;
  r.set_attempt_id(id);
  r.set_reason(std::string(ReasonName(o.reason)));
  r.set_exit_code(o.exit_code);
  r.set_signal(o.signal);
  r.set_message(o.message);
  r.set_wall_us(Micros(o.wall));
  r.set_cpu_user_us(Micros(o.cpu_user));
  r.set_cpu_sys_us(Micros(o.cpu_sys));
  r.set_max_rss_kb(o.max_rss_kb);
  r.mutable_stdout()->set_bytes(o.out.bytes);
  r.mutable_stdout()->set_dropped(o.out.dropped);
  r.mutable_stderr()->set_bytes(o.err.bytes);
  r.mutable_stderr()->set_dropped(o.err.dropped);
  r.set_result_json(o.result_json);
  r.set_worker(worker);
  for (const auto& [k, v] : o.outputs) (*r.mutable_outputs())[k] = v;
  if (o.not_started) r.set_not_started(true);
  return r;
}

AttemptOutcome OutcomeFromWire(const wire::Result& r) {
  AttemptOutcome o;
  if (auto reason = ParseReason(r.reason())) {
    o.reason = *reason;
    o.message = r.message();
  } else {
    o.reason = FailureReason::kInternal;
    o.message = "unknown failure reason '" + r.reason() + "': " + r.message();
  }
  o.exit_code = r.exit_code();
  o.signal = r.signal();
  o.wall = FromMicros(r.wall_us());
  o.cpu_user = FromMicros(r.cpu_user_us());
  o.cpu_sys = FromMicros(r.cpu_sys_us());
  o.max_rss_kb = r.max_rss_kb();
  o.out = StreamInfo{r.stdout().bytes(), r.stdout().dropped()};
  o.err = StreamInfo{r.stderr().bytes(), r.stderr().dropped()};
  o.result_json = r.result_json();
  for (const auto& [k, v] : r.outputs()) o.outputs.emplace(k, v);
  o.not_started = r.not_started() && o.reason == FailureReason::kWorkerLost;
  return o;
}

wire::Service ServiceToWire(const spec::ServiceDecl& decl) {
  wire::Service s;
  s.set_name(decl.name);
  for (const auto& a : decl.command) s.add_command(a);
  s.set_instances(static_cast<uint32_t>(decl.instances));
  s.set_host(decl.host);
  s.set_port(static_cast<uint32_t>(decl.port));
  s.set_mode(decl.mode);
  s.set_ready(decl.ready);
  s.set_ready_path(decl.ready_path);
  s.set_ready_timeout_ms(ToMillis(decl.ready_timeout));
  for (const auto& [name, value] : decl.env) {
    wire::EnvVar* e = s.add_env();
    e->set_name(name);
    e->set_value(value);
  }
  s.set_cwd(decl.cwd);
  s.set_idle_timeout_ms(ToMillis(decl.idle_timeout));
  return s;
}

spec::ServiceDecl ServiceFromWire(const wire::Service& s) {
  spec::ServiceDecl d;
  d.name = s.name();
  d.command.assign(s.command().begin(), s.command().end());
  d.instances = static_cast<int>(std::max<uint32_t>(1, s.instances()));
  if (!s.host().empty()) d.host = s.host();
  d.port = static_cast<int>(s.port());
  if (!s.mode().empty()) d.mode = s.mode();
  if (!s.ready().empty()) d.ready = s.ready();
  d.ready_path = s.ready_path();
  if (s.ready_timeout_ms() > 0) d.ready_timeout = std::chrono::milliseconds(s.ready_timeout_ms());
  for (const auto& e : s.env()) d.env.emplace_back(e.name(), e.value());
  d.cwd = s.cwd();
  if (s.idle_timeout_ms() > 0) d.idle_timeout = std::chrono::milliseconds(s.idle_timeout_ms());
  return d;
}

}  // namespace drover::protocol
