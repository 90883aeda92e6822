#include "core/protocol/security.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

namespace drover::protocol {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
// How long the handler thread waits between looks at its stop flag.
constexpr std::chrono::milliseconds kZapPoll{100};

Result<std::string> ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path.string() + ": cannot read the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string_view FirstWord(std::string_view line) {
  const size_t end = line.find_first_of(" \t");
  return end == std::string_view::npos ? line : line.substr(0, end);
}

std::string Where(const std::string& file, int line, int column) {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
}

constexpr const char* kNotAKey =
    "not a CURVE key (expected 40 characters of Z85, as written by `drover keygen`)";

// Calls `on_key(line_no, column, line)` for every line whose first word is
// a key, `line` trimmed; skips blank lines and '#' comments. Stops at the
// first error `on_key` returns, or when it returns kCancelled (stop, ok).
Status ForEachKeyLine(std::string_view text, const std::string& file,
                      const std::function<Status(int, int, std::string_view)>& on_key) {
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const std::string_view line = Trim(raw);
    if (line.empty()) continue;
    const int column = static_cast<int>(line.data() - raw.data()) + 1;
    // '#' is in Z85's alphabet but cannot start a key (it would decode past
    // 2^32), so a line whose first word is a key is never a comment.
    if (IsZ85Key(FirstWord(line))) {
      Status s = on_key(line_no, column, line);
      if (s.code() == StatusCode::kCancelled) return Status::Ok();
      if (!s.ok()) return s;
      continue;
    }
    if (line.front() == '#') continue;
    return InvalidArgument(Where(file, line_no, column) + kNotAKey);
  }
  return Status::Ok();
}

// The first key of a key file (`NAME.key`, `NAME.pub`).
Result<std::string> ParseOneKey(std::string_view text, const std::string& file) {
  std::string key;
  Status s = ForEachKeyLine(text, file, [&](int, int, std::string_view line) {
    key = std::string(FirstWord(line));
    return Cancelled("found");
  });
  if (!s.ok()) return s;
  if (key.empty()) return InvalidArgument(file + ": holds no CURVE key");
  return key;
}

Result<std::string> ReadOneKey(const std::filesystem::path& path) {
  auto text = ReadText(path);
  if (!text.ok()) return text.status();
  return ParseOneKey(*text, path.string());
}

Status WriteFileExclusive(const std::filesystem::path& path, const std::string& text,
                          mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) return AlreadyExists(path.string() + " exists; not overwriting it");
    return ErrnoError(path.string(), errno);
  }
  // The umask may have cleared bits of `mode` but never added any; make it
  // exact so a .pub is readable by whoever deploys it.
  (void)::fchmod(fd, mode);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoError(path.string(), err);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return ErrnoError(path.string(), errno);
  return Status::Ok();
}

std::optional<std::filesystem::file_time_type> ModTime(const std::filesystem::path& path) {
  std::error_code ec;
  auto t = std::filesystem::last_write_time(path, ec);
  if (ec) return std::nullopt;
  return t;
}

}  // namespace

bool IsZ85Key(std::string_view text) {
  if (text.size() != kZ85KeyLength) return false;
  const std::string s(text);
  uint8_t bytes[32];
  return zmq_z85_decode(bytes, s.c_str()) != nullptr;
}

Result<CurveKeyPair> GenerateCurveKeyPair() {
  char pub[kZ85KeyLength + 1] = {};
  char sec[kZ85KeyLength + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Unavailable(std::string("cannot make a CURVE key pair: ") + zmq_strerror(zmq_errno()) +
                       " (is libzmq built with CURVE?)");
  }
  return CurveKeyPair{pub, sec};
}

Result<std::string> CurvePublicKey(const std::string& secret_z85) {
  if (!IsZ85Key(secret_z85)) return InvalidArgument("not a Z85 CURVE secret key");
  char pub[kZ85KeyLength + 1] = {};
  if (zmq_curve_public(pub, secret_z85.c_str()) != 0) {
    return InvalidArgument(std::string("cannot derive the public key: ") +
                           zmq_strerror(zmq_errno()));
  }
  return std::string(pub);
}

Status WriteKeyPair(const std::filesystem::path& prefix, const CurveKeyPair& keys) {
  const std::filesystem::path secret = prefix.string() + ".key";
  const std::filesystem::path pub = prefix.string() + ".pub";
  std::error_code ec;
  if (std::filesystem::exists(secret, ec)) {
    return AlreadyExists(secret.string() + " exists; not overwriting it");
  }
  if (std::filesystem::exists(pub, ec)) {
    return AlreadyExists(pub.string() + " exists; not overwriting it");
  }
  Status s = WriteFileExclusive(
      secret, "# drover CURVE secret key: keep it private\n" + keys.secret_key + "\n", 0600);
  if (!s.ok()) return s;
  s = WriteFileExclusive(pub, keys.public_key + " " + prefix.filename().string() + "\n", 0644);
  if (!s.ok()) std::filesystem::remove(secret, ec);
  return s;
}

Result<std::string> ReadSecretKeyFile(const std::filesystem::path& path) {
  auto key = ReadOneKey(path);
  if (!key.ok()) return key.status();
  struct stat st = {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
    spdlog::warn("{}: the secret key is readable by others (mode {:o}); chmod 600 it",
                 path.string(), st.st_mode & 0777);
  }
  return key;
}

Result<std::string> ReadPublicKeyFile(const std::filesystem::path& path) {
  return ReadOneKey(path);
}

Result<AuthorizedKeys> ParseAuthorizedKeys(std::string_view text, const std::string& file) {
  AuthorizedKeys out;
  constexpr std::string_view kRolePrefix = "role=";
  Status s = ForEachKeyLine(text, file, [&](int line_no, int column, std::string_view line) {
    AuthorizedKey k;
    k.key = std::string(FirstWord(line));
    k.line = line_no;
    std::string_view rest = Trim(line.substr(k.key.size()));
    const int rest_column = column + static_cast<int>(rest.data() - line.data());
    if (FirstWord(rest).substr(0, kRolePrefix.size()) == kRolePrefix) {
      const std::string_view word = FirstWord(rest);
      auto role = ParseRole(word.substr(kRolePrefix.size()));
      if (!role) {
        return InvalidArgument(Where(file, line_no, rest_column) + "unknown role '" +
                               std::string(word.substr(kRolePrefix.size())) +
                               "' (roles: read, submit, worker, admin)");
      }
      k.role = *role;
      k.role_given = true;
      rest = Trim(rest.substr(word.size()));
    }
    // A role written after the name would silently not apply.
    for (std::string_view r = rest; !r.empty();) {
      const std::string_view word = FirstWord(r);
      if (word.substr(0, kRolePrefix.size()) == kRolePrefix) {
        return InvalidArgument(
            Where(file, line_no, column + static_cast<int>(word.data() - line.data())) +
            "'" + std::string(word) + "' must come right after the key (KEY role=ROLE NAME)");
      }
      r = Trim(r.substr(word.size()));
    }
    k.name = std::string(rest);
    if (!k.role_given) k.role = kDefaultRole;
    auto [it, added] = out.keys.emplace(k.key, k);
    if (!added) {
      if (it->second.role != k.role) {
        return InvalidArgument(Where(file, line_no, column) + "key listed on line " +
                               std::to_string(it->second.line) + " as " +
                               std::string(RoleName(it->second.role)) + " is listed again as " +
                               std::string(RoleName(k.role)));
      }
      return Status::Ok();
    }
    if (!k.role_given) {
      out.warnings.push_back(
          file + ":" + std::to_string(line_no) + ": key " + k.key +
          (k.name.empty() ? std::string() : " (" + k.name + ")") + " has no role, so it may only " +
          std::string(RoleName(kDefaultRole)) + " (" + std::string(RoleSummary(kDefaultRole)) +
          "); write its line as `KEY role=ROLE NAME` with ROLE worker, submit, read or admin "
          "(docs/security.md)");
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Result<AuthorizedKeys> ReadAuthorizedKeys(const std::filesystem::path& path) {
  auto text = ReadText(path);
  if (!text.ok()) return text.status();
  return ParseAuthorizedKeys(*text, path.string());
}

Status ConfigureCurveServer(zmq::socket_t& socket, const std::string& secret_z85) {
  if (!IsZ85Key(secret_z85)) return InvalidArgument("not a Z85 CURVE secret key");
  try {
    socket.set(zmq::sockopt::curve_server, 1);
    socket.set(zmq::sockopt::curve_secretkey, secret_z85);
    socket.set(zmq::sockopt::zap_domain, std::string(kZapDomain));
  } catch (const zmq::error_t& e) {
    return Unavailable(std::string("cannot enable CURVE: ") + e.what());
  }
  return Status::Ok();
}

Status ConfigureCurveClient(zmq::socket_t& socket, const std::string& secret_z85,
                            const std::string& server_public_z85) {
  auto pub = CurvePublicKey(secret_z85);
  if (!pub.ok()) return pub.status();
  if (!IsZ85Key(server_public_z85)) {
    return InvalidArgument("not a Z85 CURVE public key for the coordinator");
  }
  try {
    socket.set(zmq::sockopt::curve_serverkey, server_public_z85);
    socket.set(zmq::sockopt::curve_publickey, *pub);
    socket.set(zmq::sockopt::curve_secretkey, secret_z85);
  } catch (const zmq::error_t& e) {
    return Unavailable(std::string("cannot enable CURVE: ") + e.what());
  }
  return Status::Ok();
}

bool IsLoopbackEndpoint(std::string_view endpoint) {
  if (endpoint.rfind("inproc://", 0) == 0 || endpoint.rfind("ipc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  std::string_view host = endpoint.substr(6);
  // A "source;destination" connect form names the destination last.
  if (const size_t semi = host.rfind(';'); semi != std::string_view::npos) {
    host = host.substr(semi + 1);
  }
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    return host.substr(1, close - 1) == "::1";
  }
  host = host.substr(0, host.rfind(':'));
  if (host == "localhost") return true;
  // 127.0.0.0/8: four dotted decimal parts, the first 127.
  if (host.rfind("127.", 0) != 0) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

std::string EndpointProblem(std::string_view endpoint) {
  const std::string shown(endpoint);
  if (endpoint.rfind("inproc://", 0) == 0 || endpoint.rfind("ipc://", 0) == 0) {
    const size_t at = endpoint.find("://") + 3;
    return endpoint.size() > at ? "" : shown + ": the name after :// is empty";
  }
  if (endpoint.rfind("tcp://", 0) != 0) {
    return shown + ": not an endpoint (tcp://HOST:PORT, ipc://PATH or inproc://NAME)";
  }
  std::string_view rest = endpoint.substr(6);
  if (const size_t semi = rest.rfind(';'); semi != std::string_view::npos) {
    rest = rest.substr(semi + 1);
  }
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return shown + ": tcp:// needs HOST:PORT";
  }
  const std::string_view port = rest.substr(colon + 1);
  if (port == "*") return {};
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoi(std::string(port)) > 65535) {
    return shown + ": the port '" + std::string(port) + "' is not 0 to 65535 (or *)";
  }
  return {};
}

// ---- ZAP handler ---------------------------------------------------------

class ZapHandler::Impl {
 public:
  Impl(zmq::context_t& context, std::filesystem::path path, ZapHandler* owner)
      : socket_(context, zmq::socket_type::rep), path_(std::move(path)), owner_(owner) {}
  ~Impl() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

  Status Load() {
    auto keys = ReadAuthorizedKeys(path_);
    if (!keys.ok()) return keys.status();
    for (const auto& w : keys->warnings) spdlog::warn("ZAP: {}", w);
    keys_ = std::move(keys->keys);
    loaded_at_ = ModTime(path_);
    return Status::Ok();
  }

  Status Bind() {
    try {
      socket_.set(zmq::sockopt::linger, 0);
      socket_.bind(kZapEndpoint);
    } catch (const zmq::error_t& e) {
      return Unavailable(std::string("cannot start the ZAP handler on ") + kZapEndpoint + ": " +
                         e.what());
    }
    return Status::Ok();
  }

  void StartThread() { thread_ = std::thread([this] { Loop(); }); }

 private:
  void ReloadIfChanged() {
    const auto now = ModTime(path_);
    if (now == loaded_at_) return;
    auto keys = ReadAuthorizedKeys(path_);
    loaded_at_ = now;
    if (!keys.ok()) {
      spdlog::error("ZAP: keeping the {} authorized keys loaded before: {}", keys_.size(),
                    keys.status().message());
      return;
    }
    for (const auto& w : keys->warnings) spdlog::warn("ZAP: {}", w);
    keys_ = std::move(keys->keys);
    spdlog::info("ZAP: reloaded {}: {} authorized keys", path_.string(), keys_.size());
  }

  void Loop() {
    while (!stop_.load()) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      try {
        zmq::poll(&item, 1, kZapPoll);
        if (!(item.revents & ZMQ_POLLIN)) continue;
        std::vector<zmq::message_t> frames;
        while (true) {
          zmq::message_t frame;
          if (!socket_.recv(frame, zmq::recv_flags::dontwait)) break;
          const bool more = frame.more();
          frames.push_back(std::move(frame));
          if (!more) break;
        }
        Answer(frames);
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) return;
        spdlog::error("ZAP: {}", e.what());
      }
    }
  }

  // RFC 27: request = version, request id, domain, address, identity,
  // mechanism, credentials...; reply = version, request id, status code,
  // status text, user id, metadata.
  void Answer(const std::vector<zmq::message_t>& f) {
    std::string code = "400";
    std::string text = "malformed ZAP request";
    std::string user;
    std::string metadata;
    const std::string request_id = f.size() > 1 ? f[1].to_string() : std::string();
    if (f.size() >= 6 && f[0].to_string() == "1.0") {
      const std::string address = f[3].to_string();
      const std::string mechanism = f[5].to_string();
      if (mechanism != "CURVE" || f.size() < 7 || f[6].size() != 32) {
        text = "only CURVE clients are accepted";
        spdlog::warn("ZAP: refused a {} connection from {}", mechanism, address);
      } else {
        char z85[kZ85KeyLength + 1] = {};
        zmq_z85_encode(z85, static_cast<const uint8_t*>(f[6].data()), 32);
        ReloadIfChanged();
        if (auto it = keys_.find(z85); it != keys_.end()) {
          code = "200";
          text = "OK";
          user = z85;
          metadata = Metadata(it->second);
          owner_->accepted_.fetch_add(1);
          spdlog::debug("ZAP: accepted key {} ({}, role {}) from {}", z85, it->second.name,
                        RoleName(it->second.role), address);
        } else {
          text = "key not authorized";
          spdlog::warn("ZAP: refused CURVE key {} from {}: not in {}", z85, address,
                       path_.string());
        }
      }
    }
    if (code != "200") owner_->refused_.fetch_add(1);
    const std::string reply[] = {"1.0", request_id, code, text, user, metadata};
    for (size_t i = 0; i < 6; ++i) {
      socket_.send(zmq::buffer(reply[i]), i < 5 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }

  // The ZMTP property list of RFC 27's metadata frame: per property a
  // 1-byte name length, the name, a 4-byte big-endian value length, the
  // value.
  static std::string Metadata(const AuthorizedKey& k) {
    std::string out;
    auto add = [&out](std::string_view name, std::string_view value) {
      out += static_cast<char>(name.size());
      out += name;
      const uint32_t n = static_cast<uint32_t>(value.size());
      for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
      out += value;
    };
    add(kRoleProperty, RoleName(k.role));
    add(kKeyNameProperty, k.name);
    return out;
  }

  zmq::socket_t socket_;  // owned by thread_ once it runs
  std::filesystem::path path_;
  ZapHandler* owner_;
  std::map<std::string, AuthorizedKey> keys_;  // touched only by thread_ once it runs
  std::optional<std::filesystem::file_time_type> loaded_at_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& context,
                                                      std::filesystem::path authorized_keys) {
  std::unique_ptr<ZapHandler> handler(new ZapHandler());
  try {
    handler->impl_ = std::make_unique<Impl>(context, std::move(authorized_keys), handler.get());
  } catch (const zmq::error_t& e) {
    return Unavailable(std::string("cannot start the ZAP handler: ") + e.what());
  }
  if (Status s = handler->impl_->Load(); !s.ok()) return s;
  if (Status s = handler->impl_->Bind(); !s.ok()) return s;
  handler->impl_->StartThread();
  return handler;
}

ZapHandler::~ZapHandler() = default;

}  // namespace drover::protocol
