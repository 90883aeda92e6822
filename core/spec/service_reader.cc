// YamlReader, part six: services. The top-level `services` (supervised
// servers sharing a port), a task's `service` name (backends/cluster's
// kind reads the rest of a cluster task), and the `${services.NAME.port}` /
// `${services.NAME.host}` references any task may make. Such a reference is checked here
// and left in the text: the worker replaces it once the service is up on it, since a port
// of 0 is only known there.
#include <algorithm>
#include <limits>

#include "core/spec/text.h"
#include "core/spec/yaml_reader.h"

namespace drover::spec::internal {
namespace {

constexpr std::string_view kServiceKeys[] = {"command", "instances",    "listen",
                                             "mode",    "ready",        "env",
                                             "cwd",     "idle_timeout", "from"};
constexpr std::string_view kServiceModes[] = {"reuseport", "shared", "round-robin"};
constexpr std::string_view kReadyKeys[] = {"http", "timeout"};
constexpr std::string_view kRefFields[] = {"port", "host"};
constexpr std::string_view kRefOpen = "${services.";

std::string ServiceRefText(std::string_view name) { return "service " + Quoted(name); }

bool HasControlOrSpace(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7F;
  });
}

}  // namespace

NameRef YamlReader::ReadServiceName(const Entry& e, std::string_view context) {
  NameRef ref{std::string(), e.key_pos, /*ok=*/false};
  const std::optional<std::string> name = Scalar(e, context, "a service name");
  if (!name) return ref;
  ref.name = *name;
  const auto found = services_.find(*name);
  if (found != services_.end()) {
    ref.ok = found->second;  // a broken service was reported where it is declared
    return ref;
  }
  if (services_unreadable_) return ref;
  std::string hint;
  if (service_names_.empty()) {
    hint = " (no services are declared: add it under 'services:')";
  } else {
    const std::vector<std::string_view> names(service_names_.begin(),
                                              service_names_.end());
    hint = DidYouMean(*name, names);
  }
  Error(e.value_pos, "unknown service " + Quoted(*name) + std::string(context) + hint);
  return ref;
}

void YamlReader::ReadServices(const Entry& e, RawJob* job) {
  if (!e.value.IsMap()) {
    Error(e.value_pos,
          "'services' must be a map of service name to service, " + Got(e.value));
    services_unreadable_ = true;
    return;
  }
  for (const Entry& entry : Entries(e.value, " in 'services'", MapKind::kKeys)) {
    ReadService(entry, job);
  }
}

void YamlReader::ReadService(const Entry& e, RawJob* job) {
  // Declared even when broken, so that tasks naming it are not told the
  // service does not exist on top of what is wrong with it.
  services_[e.key] = false;
  service_names_.push_back(e.key);
  const size_t errors_before = errors_->size();
  const std::string context = " in " + ServiceRefText(e.key);
  if (!IsValidName(e.key)) {
    Error(e.key_pos, "invalid service name " + Quoted(e.key) +
                         ": use letters, digits, '_', '.' and '-'");
  }
  if (!e.value.IsMap()) {
    Error(e.value_pos, ServiceRefText(e.key) +
                           " must be a map with at least 'command', " + Got(e.value));
    return;
  }

  ServiceDecl service;
  service.name = e.key;
  service.where = SourceLocation{errors_->file(), e.key_pos.line, e.key_pos.column};
  const std::vector<std::string_view> candidates(std::begin(kServiceKeys),
                                                 std::end(kServiceKeys));
  const std::vector<Entry> entries = Entries(e.value, context, MapKind::kKeys);
  const auto from = std::find_if(entries.begin(), entries.end(),
                                 [](const Entry& entry) { return entry.key == "from"; });
  if (from != entries.end()) {
    ReadWorkerService(e, *from, entries, &service);
    if (errors_->size() != errors_before) return;
    services_[e.key] = true;
    job->services.push_back(std::move(service));
    return;
  }
  const Entry* command = nullptr;  // into `entries`
  for (const Entry& entry : entries) {
    const std::string& key = entry.key;
    if (key == "command") {
      command = &entry;
    } else if (key == "instances") {
      if (auto n = Integer(entry, context, "an integer of at least 1", 1,
                           kMaxServiceInstances)) {
        service.instances = static_cast<int>(*n);
      }
    } else if (key == "listen") {
      ReadListen(entry, context, &service);
    } else if (key == "mode") {
      const std::optional<std::string> mode =
          Scalar(entry, context, "reuseport, shared or round-robin");
      if (!mode) continue;
      const std::vector<std::string_view> modes(std::begin(kServiceModes),
                                                std::end(kServiceModes));
      if (std::find(modes.begin(), modes.end(), *mode) != modes.end()) {
        service.mode = *mode;
        continue;
      }
      std::string hint = DidYouMean(*mode, modes);
      if (hint.empty()) hint = " (the modes are reuseport, shared and round-robin)";
      Error(entry.value_pos, "unknown mode " + Quoted(*mode) + context + hint);
    } else if (key == "ready") {
      ReadReady(entry, context, &service);
    } else if (key == "env") {
      if (std::optional<RawEnv> env = ReadEnv(entry, context)) {
        for (auto& [name, value] : *env) service.env.emplace_back(name, value.text);
      }
    } else if (key == "cwd") {
      if (auto text = Scalar(entry, context, "a directory"))
        service.cwd = std::move(*text);
    } else if (key == "idle_timeout") {
      if (auto d = DurationValue(entry, context, /*allow_zero=*/false)) {
        service.idle_timeout = *d;
      }
    } else {
      UnknownKey(entry, context, candidates);
    }
  }
  if (command == nullptr) {
    Error(e.key_pos, ServiceRefText(e.key) +
                         " has no 'command' (the server program its instances run)");
  } else {
    bool shell = false;
    std::vector<Located> argv;
    ReadArgv(*command, context, &shell, &argv);
    if (shell && !argv.empty()) service.command = {"/bin/sh", "-c"};
    for (Located& arg : argv) service.command.push_back(std::move(arg.text));
  }

  if (errors_->size() != errors_before) return;
  services_[e.key] = true;
  job->services.push_back(std::move(service));
}

// `NAME: {from: worker}`: the workers' own service NAME. The worker's
// configuration says how to run it, so no other key may come with it.
void YamlReader::ReadWorkerService(const Entry& e, const Entry& from,
                                   const std::vector<Entry>& entries,
                                   ServiceDecl* service) {
  const std::string context = " in " + ServiceRefText(e.key);
  if (const std::optional<std::string> source = Scalar(from, context, "worker")) {
    if (*source == "worker") {
      service->from_worker = true;
    } else {
      Error(from.value_pos,
            "'from'" + context +
                " must be 'worker' (the workers' own service of that name), "
                "got " +
                Quoted(*source));
    }
  }
  for (const Entry& entry : entries) {
    if (entry.key == "from") continue;
    Error(entry.key_pos,
          Quoted(entry.key) + context +
              " does not go with 'from: worker': the worker's configuration "
              "declares that service");
  }
}

// `listen: HOST:PORT`, `[IPV6]:PORT`, or `PORT` alone (on 127.0.0.1).
bool YamlReader::ReadListen(const Entry& e, std::string_view context,
                            ServiceDecl* service) {
  constexpr std::string_view kExpected =
      "HOST:PORT, such as 127.0.0.1:8080 or 127.0.0.1:0 (0: a free port)";
  const std::optional<std::string> text = Scalar(e, context, kExpected);
  if (!text) return false;
  std::string host = "127.0.0.1";
  std::string_view port_text = *text;
  const size_t colon = text->rfind(':');
  if (colon != std::string::npos) {
    host = text->substr(0, colon);
    port_text = std::string_view(*text).substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string::npos) {
      Error(e.value_pos, "'listen'" + std::string(context) +
                             ": write an IPv6 address in brackets, as [::1]:8080, got " +
                             Quoted(*text));
      return false;
    }
    if (host.empty() || HasControlOrSpace(host)) {
      Error(e.value_pos, "'listen'" + std::string(context) + " must be " +
                             std::string(kExpected) + ", got " + Quoted(*text));
      return false;
    }
  }
  const std::optional<int64_t> port = ParseInt(port_text);
  if (!port || *port < 0 || *port > 65535) {
    Error(e.value_pos, "'listen'" + std::string(context) + " must be " +
                           std::string(kExpected) + " with a port from 0 to 65535, got " +
                           Quoted(*text));
    return false;
  }
  service->host = std::move(host);
  service->port = static_cast<int>(*port);
  return true;
}

// `ready: tcp`, `ready: http` (GET /), or `ready: {http: /health, timeout: 10s}`
// (a map without `http` keeps the TCP check).
bool YamlReader::ReadReady(const Entry& e, std::string_view context,
                           ServiceDecl* service) {
  const std::string ready_context = " in 'ready'" + std::string(context);
  if (!IsEmpty(e.value) && e.value.IsScalar()) {
    const std::string& kind = e.value.Scalar();
    if (kind == "tcp" || kind == "http") {
      service->ready = kind;
      if (kind == "http") service->ready_path = "/";
      return true;
    }
    const std::vector<std::string_view> kinds = {"tcp", "http"};
    std::string hint = DidYouMean(kind, kinds);
    if (hint.empty()) hint = " (write tcp, http, or {http: /path, timeout: 10s})";
    Error(e.value_pos,
          "unknown readiness check " + Quoted(kind) + std::string(context) + hint);
    return false;
  }
  if (IsEmpty(e.value) || !e.value.IsMap()) {
    Error(e.value_pos,
          "'ready'" + std::string(context) +
              " must be tcp, http, or a map such as {http: /health, timeout: "
              "10s}, " +
              Got(e.value));
    return false;
  }
  bool ok = true;
  const std::vector<std::string_view> candidates(std::begin(kReadyKeys),
                                                 std::end(kReadyKeys));
  for (const Entry& entry : Entries(e.value, ready_context, MapKind::kKeys)) {
    if (entry.key == "http") {
      const std::optional<std::string> path =
          Scalar(entry, ready_context, "a path such as /health");
      if (!path) {
        ok = false;
      } else if (path->empty() || path->front() != '/' || HasControlOrSpace(*path)) {
        Error(entry.value_pos,
              "'http'" + ready_context +
                  " must be a path starting with '/', without spaces, got " +
                  Quoted(*path));
        ok = false;
      } else {
        service->ready = "http";
        service->ready_path = *path;
      }
    } else if (entry.key == "timeout") {
      if (auto d = DurationValue(entry, ready_context, /*allow_zero=*/false)) {
        service->ready_timeout = *d;
      } else {
        ok = false;
      }
    } else {
      UnknownKey(entry, ready_context, candidates);
      ok = false;
    }
  }
  return ok;
}

void YamlReader::NoteServiceRefs(std::string_view text, Pos where, RawTask* task) {
  size_t i = 0;
  while (true) {
    const size_t at = text.find(kRefOpen, i);
    if (at == std::string_view::npos) return;
    const size_t start = at + kRefOpen.size();
    const size_t close = text.find('}', start);
    if (close == std::string_view::npos) {
      Error(where, "unterminated '${services.' in " + TaskRef(task->name) +
                       " (write ${services.NAME.port} or ${services.NAME.host})");
      return;
    }
    i = close + 1;
    const std::string_view inner = text.substr(start, close - start);
    const std::string ref = Quoted(text.substr(at, close + 1 - at));
    const size_t dot = inner.rfind('.');
    if (dot == std::string_view::npos || dot == 0) {
      Error(where, ref + " in " + TaskRef(task->name) +
                       ": write ${services.NAME.port} or ${services.NAME.host}");
      continue;
    }
    const std::string name(inner.substr(0, dot));
    const std::string_view field = inner.substr(dot + 1);
    if (field != "port" && field != "host") {
      const std::vector<std::string_view> fields(std::begin(kRefFields),
                                                 std::end(kRefFields));
      std::string hint = DidYouMean(field, fields);
      if (hint.empty()) hint = " (a service has 'port' and 'host')";
      Error(where, ref + " in " + TaskRef(task->name) + ": unknown field " +
                       Quoted(field) + hint);
      continue;
    }
    const auto found = services_.find(name);
    if (found == services_.end()) {
      if (services_unreadable_) continue;  // `services` itself was reported
      std::string hint;
      if (service_names_.empty()) {
        hint = " (no services are declared: add it under 'services:')";
      } else {
        const std::vector<std::string_view> names(service_names_.begin(),
                                                  service_names_.end());
        hint = DidYouMean(name, names);
      }
      Error(where, ref + " in " + TaskRef(task->name) + ": unknown service " +
                       Quoted(name) + hint);
      continue;
    }
    task->services.push_back(name);
  }
}

void YamlReader::NoteServiceRefs(const JsonTemplate& json, Pos where, RawTask* task) {
  // A reference is plain text inside a JSON string: names and fields use no
  // character JSON escapes, so it survives escaping unchanged.
  for (const std::string& part : json.parts()) NoteServiceRefs(part, where, task);
}

void YamlReader::SortServices(RawTask* task) {
  std::sort(task->services.begin(), task->services.end());
  task->services.erase(std::unique(task->services.begin(), task->services.end()),
                       task->services.end());
}

}  // namespace drover::spec::internal
