// Who may use the HTTP API (docs/api.md, "Security"): the bind address
// rule and the bearer tokens of `--http-token FILE`. Plain data, no I/O
// but reading the token file.
//
// The token file has one token a line, `read TOKEN` or `admin TOKEN`;
// blank lines and lines starting with # are ignored. A read token may GET
// everything under /api/v1 and /metrics; an admin token may also POST the
// actions (cancel, retry, start a pipeline run). `drover worker
// --metrics-token` reads the same format; any of its tokens may scrape.
#ifndef DROVER_TOOLS_HTTP_ACCESS_H_
#define DROVER_TOOLS_HTTP_ACCESS_H_

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"

namespace drover::http {

enum class Access { kNone, kRead, kAdmin };

// "HOST:PORT" of --http, split. IPv6 in brackets: "[::1]:8080". The host
// may be empty (":8080", every interface). kInvalidArgument naming the
// text otherwise.
struct HttpAddress {
  std::string host;
  int port = 0;
};
Result<HttpAddress> ParseHttpAddress(std::string_view text,
                                     std::string_view flag = "--http");

// 127.0.0.0/8, ::1 and localhost. An empty host, 0.0.0.0 and :: are not.
bool IsLoopbackHost(std::string_view host);

class Tokens {
 public:
  // No tokens: every request has admin access (loopback only, see
  // CheckHttpSecurity).
  Tokens() = default;
  // Reads FILE. Errors name FILE:LINE.
  static Result<Tokens> Load(const std::filesystem::path& file);
  // Parses the text of a token file; `file` names it in errors.
  static Result<Tokens> Parse(std::string_view text, const std::string& file);

  bool required() const { return !entries_.empty(); }
  // The access `token` gives; kAdmin for anything when no token is
  // required. Compares in time independent of where a token differs.
  Access Check(std::string_view token) const;

 private:
  struct Entry {
    std::string token;
    Access access;
  };
  std::vector<Entry> entries_;
};

// The --http rule: a non-loopback host needs tokens. kInvalidArgument with
// the message the daemon prints otherwise, which names `token_flag` and
// says what a stranger could do (`exposure`).
Status CheckHttpSecurity(const HttpAddress& address, const Tokens& tokens,
                         std::string_view token_flag = "--http-token",
                         std::string_view exposure = "read your jobs and cancel them");

}  // namespace drover::http

#endif  // DROVER_TOOLS_HTTP_ACCESS_H_
