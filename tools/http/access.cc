#include "tools/http/access.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace drover::http {

Result<HttpAddress> ParseHttpAddress(std::string_view text, std::string_view flag) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument(
        std::string(flag) + ": '" + std::string(text) + "' " + why +
        " (give HOST:PORT, e.g. 127.0.0.1:8080; port 0 picks a free one)");
  };
  HttpAddress out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() ||
        text[close + 1] != ':') {
      return bad("is not [IPV6]:PORT");
    }
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("has no port");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos)
      return bad("has an IPv6 host without [ ]");
    port = text.substr(colon + 1);
  }
  const auto [end, ec] =
      std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (ec != std::errc() || end != port.data() + port.size() || out.port < 0 ||
      out.port > 65535) {
    return bad("has no valid port");
  }
  return out;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  return host.substr(0, 4) == "127." &&
         host.find_first_not_of("0123456789.") == std::string::npos;
}

Result<Tokens> Tokens::Load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return InvalidArgument("--http-token: cannot read " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), file.string());
}

Result<Tokens> Tokens::Parse(std::string_view text, const std::string& file) {
  Tokens tokens;
  int number = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;
    while (!line.empty() &&
           (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
      line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = file + ":" + std::to_string(number) + ": ";
    const size_t space = line.find_first_of(" \t");
    if (space == std::string_view::npos) {
      return InvalidArgument(where + "expected 'read TOKEN' or 'admin TOKEN'");
    }
    const std::string_view role = line.substr(0, space);
    std::string_view token = line.substr(space);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
      token.remove_prefix(1);
    }
    Access access;
    if (role == "read") {
      access = Access::kRead;
    } else if (role == "admin") {
      access = Access::kAdmin;
    } else {
      return InvalidArgument(where + "unknown role '" + std::string(role) +
                             "' (expected read or admin)");
    }
    if (token.size() < 16 || token.find_first_of(" \t") != std::string_view::npos) {
      return InvalidArgument(where + "a token is one word of at least 16 characters");
    }
    tokens.entries_.push_back({std::string(token), access});
  }
  if (tokens.entries_.empty()) {
    return InvalidArgument(file + ": no token (lines 'read TOKEN' or 'admin TOKEN')");
  }
  return tokens;
}

Access Tokens::Check(std::string_view token) const {
  if (entries_.empty()) return Access::kAdmin;
  Access found = Access::kNone;
  for (const Entry& e : entries_) {
    // Every byte of every entry is looked at, so the time says nothing
    // about how much of a guess was right.
    unsigned diff = e.token.size() == token.size() ? 0u : 1u;
    for (size_t i = 0; i < e.token.size(); ++i) {
      diff |= static_cast<unsigned char>(e.token[i]) ^
              static_cast<unsigned char>(i < token.size() ? token[i] : 0);
    }
    if (diff == 0 && e.access > found) found = e.access;
  }
  return found;
}

Status CheckHttpSecurity(const HttpAddress& address, const Tokens& tokens,
                         std::string_view token_flag, std::string_view exposure) {
  if (IsLoopbackHost(address.host) || tokens.required()) return Status::Ok();
  return InvalidArgument(
      "refusing to serve HTTP on " +
      (address.host.empty() ? std::string("every interface") : address.host) +
      " without tokens: anyone who reaches it could " + std::string(exposure) +
      ". Give " + std::string(token_flag) +
      " FILE (lines 'read TOKEN' and 'admin TOKEN'), or bind 127.0.0.1");
}

}  // namespace drover::http
