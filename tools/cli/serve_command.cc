#include "tools/cli/serve_command.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "backends/services/http_server.h"
#include "backends/services/listen_socket.h"
#include "drover/handoff.h"
#include "tools/cli/commands.h"

namespace drover::cli {
namespace {

// Splits "HOST:PORT" and "[V6]:PORT".
bool SplitHostPort(const std::string& text, std::string* host, int* port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size()) return false;
  *host = text.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  int value = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9' || value > 65535) return false;
    value = value * 10 + (c - '0');
  }
  if (value > 65535) return false;
  *port = value;
  return true;
}

bool IsListening(int fd) {
  int accepting = 0;
  socklen_t len = sizeof(accepting);
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting != 0;
}

}  // namespace

ServeSubcommand AddServeCommand(CLI::App& app) {
  ServeSubcommand sub;
  sub.args = std::make_shared<ServeArgs>();
  sub.command = app.add_subcommand("serve", "Run a built-in HTTP server (hello, echo, sort)");
  sub.command->add_option("SERVER", sub.args->server, "hello, echo or sort")
      ->required()
      ->check(CLI::IsMember({"hello", "echo", "sort"}));
  sub.command->add_option("--listen", sub.args->listen,
                          "HOST:PORT to listen on (port 0: any free port, printed)");
  sub.command->add_option("--drain", sub.args->drain_seconds,
                          "seconds to finish requests after SIGTERM")
      ->capture_default_str();
  sub.command->footer(
      "Without --listen it takes the socket it was given: LISTEN_FDS=1 with\n"
      "LISTEN_PID (systemd, drover's reuseport and shared modes; the socket is\n"
      "fd 3) or DROVER_HANDOFF_FD (drover's round-robin mode).\n"
      "  hello  answers \"Hello World\"\n"
      "  echo   answers with the request body\n"
      "  sort   answers with the numbers of the body sorted, one a line\n"
      "Example:\n  drover serve hello --listen 127.0.0.1:8080");
  return sub;
}

int ServeCommand(const ServeArgs& args) {
  Result<services::HttpHandler> handler = services::ParseHttpHandler(args.server);
  if (!handler.ok()) {
    std::fprintf(stderr, "drover serve: %s\n", handler.status().message().c_str());
    return kExitUsage;
  }
  int listen_fd = -1;
  int handoff_fd = -1;
  if (!args.listen.empty()) {
    std::string host;
    int port = 0;
    if (!SplitHostPort(args.listen, &host, &port)) {
      std::fprintf(stderr, "drover serve: --listen wants HOST:PORT, not '%s'\n",
                   args.listen.c_str());
      return kExitUsage;
    }
    Result<services::SocketAddress> address = services::ResolveHost(host, port);
    Result<UniqueFd> fd = address.ok() ? services::BindListener(*address, host, false)
                                       : Result<UniqueFd>(address.status());
    if (!fd.ok()) {
      std::fprintf(stderr, "drover serve: %s\n", fd.status().message().c_str());
      return kExitFailed;
    }
    listen_fd = fd->Release();
    std::printf("drover serve %s: listening on %s\n", args.server.c_str(),
                services::HostPort(host, services::LocalPort(listen_fd)).c_str());
    std::fflush(stdout);
  } else if (int chan = drover_handoff_fd(); chan >= 0) {
    handoff_fd = chan;
  } else if (drover_listen_fds() >= 1) {
    if (!IsListening(DROVER_LISTEN_FDS_START)) {
      std::fprintf(stderr, "drover serve: LISTEN_FDS is set but fd 3 is not a listening socket\n");
      return kExitFailed;
    }
    listen_fd = DROVER_LISTEN_FDS_START;
  } else {
    std::fprintf(stderr,
                 "drover serve: no socket: give --listen HOST:PORT, or run it as a service "
                 "instance (LISTEN_FDS=1 and LISTEN_PID with the socket on fd 3, or "
                 "DROVER_HANDOFF_FD)\n");
    return kExitUsage;
  }
  // Ours, not our children's (systemd's convention).
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDNAMES");
  ::unsetenv("DROVER_HANDOFF_FD");

  services::HttpServerOptions options;
  options.handler = *handler;
  options.drain = std::chrono::duration_cast<Duration>(
      std::chrono::duration<double>(args.drain_seconds > 0 ? args.drain_seconds : 0));
  Result<uint64_t> served = services::RunHttpServer(options, listen_fd, handoff_fd);
  if (!served.ok()) {
    std::fprintf(stderr, "drover serve: %s\n", served.status().message().c_str());
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace drover::cli
