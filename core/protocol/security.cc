#include "core/protocol/security.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
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

// One key per line, as described in the header. `want_one`: stop at the
// first key (key files) instead of collecting all (authorized_keys).
Result<std::set<std::string>> ParseKeys(std::string_view text, const std::string& file,
                                        bool want_one) {
  std::set<std::string> keys;
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const std::string_view line = Trim(raw);
    if (line.empty()) continue;
    const std::string_view word = FirstWord(line);
    // '#' is in Z85's alphabet but cannot start a key (it would decode past
    // 2^32), so a line whose first word is a key is never a comment.
    if (IsZ85Key(word)) {
      keys.emplace(word);
      if (want_one) return keys;
      continue;
    }
    if (line.front() == '#') continue;
    const int column = static_cast<int>(line.data() - raw.data()) + 1;
    return InvalidArgument(file + ":" + std::to_string(line_no) + ":" + std::to_string(column) +
                           ": not a CURVE key (expected 40 characters of Z85, as written by "
                           "`drover keygen`)");
  }
  if (want_one && keys.empty()) return InvalidArgument(file + ": holds no CURVE key");
  return keys;
}

Result<std::string> ReadOneKey(const std::filesystem::path& path) {
  auto text = ReadText(path);
  if (!text.ok()) return text.status();
  auto keys = ParseKeys(*text, path.string(), /*want_one=*/true);
  if (!keys.ok()) return keys.status();
  return *keys->begin();
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

Result<std::set<std::string>> ParseAuthorizedKeys(std::string_view text,
                                                  const std::string& file) {
  return ParseKeys(text, file, /*want_one=*/false);
}

Result<std::set<std::string>> ReadAuthorizedKeys(const std::filesystem::path& path) {
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
    keys_ = std::move(*keys);
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
    keys_ = std::move(*keys);
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
        if (keys_.count(z85)) {
          code = "200";
          text = "OK";
          user = z85;
          owner_->accepted_.fetch_add(1);
          spdlog::debug("ZAP: accepted key {} from {}", z85, address);
        } else {
          text = "key not authorized";
          spdlog::warn("ZAP: refused CURVE key {} from {}: not in {}", z85, address,
                       path_.string());
        }
      }
    }
    if (code != "200") owner_->refused_.fetch_add(1);
    const std::string reply[] = {"1.0", request_id, code, text, user, ""};
    for (size_t i = 0; i < 6; ++i) {
      socket_.send(zmq::buffer(reply[i]), i < 5 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }

  zmq::socket_t socket_;  // owned by thread_ once it runs
  std::filesystem::path path_;
  ZapHandler* owner_;
  std::set<std::string> keys_;  // touched only by thread_ once it runs
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
