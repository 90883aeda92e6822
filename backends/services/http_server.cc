#include "backends/services/http_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "backends/process/unique_fd.h"
#include "drover/handoff.h"

namespace drover::services {

Result<HttpHandler> ParseHttpHandler(std::string_view name) {
  if (name == "hello") return HttpHandler::kHello;
  if (name == "echo") return HttpHandler::kEcho;
  if (name == "sort") return HttpHandler::kSort;
  return InvalidArgument("unknown server '" + std::string(name) +
                         "' (expected hello, echo or sort)");
}

Result<std::string> SortNumbers(std::string_view body) {
  struct Number {
    double value;
    std::string_view text;
  };
  std::vector<Number> numbers;
  size_t i = 0;
  auto is_sep = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',';
  };
  while (i < body.size()) {
    while (i < body.size() && is_sep(body[i])) ++i;
    size_t start = i;
    while (i < body.size() && !is_sep(body[i])) ++i;
    if (start == i) break;
    std::string_view token = body.substr(start, i - start);
    std::string copy(token);
    char* end = nullptr;
    errno = 0;
    double value = std::strtod(copy.c_str(), &end);
    if (end != copy.c_str() + copy.size() || errno == ERANGE || value != value) {
      return InvalidArgument("not a number: '" + copy.substr(0, 40) + "'");
    }
    numbers.push_back({value, token});
  }
  std::stable_sort(numbers.begin(), numbers.end(),
                   [](const Number& a, const Number& b) { return a.value < b.value; });
  std::string out;
  out.reserve(body.size() + 1);
  for (const Number& n : numbers) {
    out.append(n.text);
    out.push_back('\n');
  }
  return out;
}

namespace {

constexpr size_t kMaxHead = 64 * 1024;

struct Conn {
  UniqueFd fd;
  std::string in;
  std::string out;
  size_t out_off = 0;
  uint64_t served = 0;
  bool close_after_write = false;
  bool want_write = false;
  SteadyTime opened{};
};

// Case-insensitive comparison of ASCII header names and tokens.
bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool IContains(std::string_view haystack, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (IEquals(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

class Server {
 public:
  Server(const HttpServerOptions& options, int listen_fd, int handoff_fd)
      : options_(options), listen_(listen_fd), handoff_(handoff_fd) {
    pid_header_ = "X-Drover-Pid: " + std::to_string(::getpid()) + "\r\n";
  }

  Result<uint64_t> Run();

 private:
  void Accept();
  void ReceiveHandoffs();
  void Adopt(int fd);
  void OnReadable(Conn& conn);
  void OnWritable(Conn& conn);
  // Parses and answers every complete request in conn.in.
  void Process(Conn& conn);
  void Respond(Conn& conn, int status, std::string_view reason, std::string_view body,
               bool close);
  void Flush(Conn& conn);
  void Close(int fd);
  void StartDrain();
  void DrainSweep();

  const HttpServerOptions options_;
  UniqueFd listen_;
  UniqueFd handoff_;
  UniqueFd epoll_;
  UniqueFd signals_;
  std::string pid_header_;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  uint64_t requests_ = 0;
  bool draining_ = false;
  SteadyTime drain_deadline_{};
  RealClock clock_;
};

Result<uint64_t> Server::Run() {
  epoll_.Reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) return ErrnoError("epoll_create1", errno);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return ErrnoError("sigprocmask", errno);
  signals_.Reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signals_.valid()) return ErrnoError("signalfd", errno);
  ::signal(SIGPIPE, SIG_IGN);
  auto add = [&](int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
  };
  if (!add(signals_.get())) return ErrnoError("epoll_ctl", errno);
  for (UniqueFd* source : {&listen_, &handoff_}) {
    if (!source->valid()) continue;
    // Non-blocking: in shared mode another instance may take the
    // connection between our wake-up and our accept.
    ::fcntl(source->get(), F_SETFL, ::fcntl(source->get(), F_GETFL) | O_NONBLOCK);
    if (!add(source->get())) return ErrnoError("epoll_ctl", errno);
  }

  std::vector<epoll_event> events(256);
  while (true) {
    if (draining_) {
      DrainSweep();
      if ((conns_.empty() && !listen_.valid() && !handoff_.valid()) ||
          clock_.Now() >= drain_deadline_) {
        break;
      }
    }
    int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                         draining_ ? 50 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("epoll_wait", errno);
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == signals_.get()) {
        signalfd_siginfo info;
        while (::read(signals_.get(), &info, sizeof(info)) == sizeof(info)) {
        }
        StartDrain();
        continue;
      }
      if (listen_.valid() && fd == listen_.get()) {
        Accept();
        continue;
      }
      if (handoff_.valid() && fd == handoff_.get()) {
        ReceiveHandoffs();
        continue;
      }
      auto it = conns_.find(fd);
      if (it == conns_.end()) continue;
      Conn& conn = *it->second;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        // Read first: a peer that sent a request and closed its side
        // (HUP) still gets its answer.
        if (!(events[i].events & EPOLLIN)) {
          Close(fd);
          continue;
        }
      }
      if (events[i].events & EPOLLOUT) {
        OnWritable(conn);
        if (!conns_.count(fd)) continue;
      }
      if (events[i].events & (EPOLLIN | EPOLLHUP)) OnReadable(conn);
    }
  }
  return requests_;
}

void Server::Adopt(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  auto conn = std::make_unique<Conn>();
  conn->fd.Reset(fd);
  conn->opened = clock_.Now();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return;  // closes it
  conns_[fd] = std::move(conn);
}

void Server::Accept() {
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN (another instance took it), or EMFILE: try later
    }
    Adopt(fd);
  }
}

void Server::ReceiveHandoffs() {
  for (int i = 0; i < 64; ++i) {
    int fd = drover_handoff_recv(handoff_.get());
    if (fd >= 0) {
      Adopt(fd);
      continue;
    }
    if (errno == EPROTO) continue;
    if (errno != EAGAIN) {
      // End of the channel (or a broken one): no more connections come.
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, handoff_.get(), nullptr);
      handoff_.Reset();
      if (!draining_) StartDrain();
    }
    return;
  }
}

void Server::OnReadable(Conn& conn) {
  const int fd = conn.fd.get();
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      conn.in.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof(buf)) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    // EOF or error: answer what is complete, then close once written.
    Process(conn);
    if (!conns_.count(fd)) return;
    if (conn.out_off >= conn.out.size()) {
      Close(fd);
    } else {
      conn.close_after_write = true;
    }
    return;
  }
  Process(conn);
}

void Server::Process(Conn& conn) {
  const int fd = conn.fd.get();
  size_t consumed = 0;
  while (!conn.close_after_write) {
    std::string_view in(conn.in);
    in.remove_prefix(consumed);
    const HttpRequestParse request = ParseHttpRequest(in, options_.max_body);
    if (request.state == HttpRequestParse::State::kIncomplete) break;
    if (request.state == HttpRequestParse::State::kError) {
      Respond(conn, request.status, request.reason, request.message, true);
      break;
    }
    const bool keep_alive = request.keep_alive;
    const std::string_view body = request.body;
    consumed += request.size;
    ++conn.served;
    ++requests_;
    const bool close = !keep_alive || draining_;
    switch (options_.handler) {
      case HttpHandler::kHello:
        Respond(conn, 200, "OK", "Hello World", close);
        break;
      case HttpHandler::kEcho:
        Respond(conn, 200, "OK", body, close);
        break;
      case HttpHandler::kSort: {
        Result<std::string> sorted = SortNumbers(body);
        if (sorted.ok()) {
          Respond(conn, 200, "OK", *sorted, close);
        } else {
          Respond(conn, 400, "Bad Request", sorted.status().message() + "\n", close);
        }
        break;
      }
    }
  }
  if (!conns_.count(fd)) return;
  conn.in.erase(0, consumed);
  Flush(conn);
}

void Server::Respond(Conn& conn, int status, std::string_view reason, std::string_view body,
                     bool close) {
  std::string& out = conn.out;
  out.append("HTTP/1.1 ");
  out.append(std::to_string(status));
  out.push_back(' ');
  out.append(reason);
  out.append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  out.append(std::to_string(body.size()));
  out.append("\r\n");
  out.append(pid_header_);
  if (close) out.append("Connection: close\r\n");
  out.append("\r\n");
  out.append(body);
  if (close) conn.close_after_write = true;
}

void Server::Flush(Conn& conn) {
  const int fd = conn.fd.get();
  while (conn.out_off < conn.out.size()) {
    ssize_t n = ::send(fd, conn.out.data() + conn.out_off, conn.out.size() - conn.out_off,
                       MSG_NOSIGNAL);
    if (n > 0) {
      conn.out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!conn.want_write) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
        ev.data.fd = fd;
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
        conn.want_write = true;
      }
      return;
    }
    Close(fd);  // the peer went away
    return;
  }
  conn.out.clear();
  conn.out_off = 0;
  if (conn.want_write) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
    conn.want_write = false;
  }
  if (conn.close_after_write) {
    // Half-close first so that the client reads the whole answer before
    // the close; the read side is closed with the descriptor.
    ::shutdown(fd, SHUT_WR);
    Close(fd);
  }
}

void Server::OnWritable(Conn& conn) { Flush(conn); }

void Server::Close(int fd) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  conns_.erase(fd);
}

void Server::StartDrain() {
  if (draining_) return;
  draining_ = true;
  drain_deadline_ = clock_.Now() + options_.drain;
  if (listen_.valid()) {
    // Connections still queued on the socket go to the other instances
    // that share it (the supervisor keeps it open).
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, listen_.get(), nullptr);
    listen_.Reset();
  }
  // A hand-off channel is read to its end: connections already passed to
  // us are ours to serve.
}

void Server::DrainSweep() {
  const SteadyTime now = clock_.Now();
  std::vector<int> idle;
  for (auto& [fd, conn] : conns_) {
    if (!conn->in.empty() || conn->out_off < conn->out.size()) continue;  // mid-request
    if (conn->served > 0 || now - conn->opened >= options_.first_request_grace) {
      idle.push_back(fd);
    }
  }
  for (int fd : idle) Close(fd);
}

}  // namespace

Result<uint64_t> RunHttpServer(const HttpServerOptions& options, int listen_fd, int handoff_fd) {
  Server server(options, listen_fd, handoff_fd);
  return server.Run();
}

HttpRequestParse ParseHttpRequest(std::string_view in, size_t max_body) {
  HttpRequestParse r;
  auto error = [&r](int status, std::string_view reason, std::string_view message) {
    r.state = HttpRequestParse::State::kError;
    r.status = status;
    r.reason = reason;
    r.message = message;
    return r;
  };
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (in.size() > kMaxHead) return error(431, "Request Header Fields Too Large", "");
    return r;
  }
  std::string_view head = in.substr(0, head_end);
  size_t line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  size_t sp1 = request_line.find(' ');
  size_t sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) {
    return error(400, "Bad Request", "bad request line\n");
  }
  std::string_view version = request_line.substr(sp2 + 1);
  bool keep_alive = version == "HTTP/1.1";
  size_t content_length = 0;
  bool chunked = false;
  bool bad_length = false;
  std::string_view headers =
      line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!headers.empty()) {
    size_t eol = headers.find("\r\n");
    std::string_view line = headers.substr(0, eol);
    headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    if (IEquals(name, "content-length")) {
      content_length = 0;
      if (value.empty()) bad_length = true;
      for (char c : value) {
        if (c < '0' || c > '9' || content_length > max_body) {
          bad_length = true;
          break;
        }
        content_length = content_length * 10 + static_cast<size_t>(c - '0');
      }
    } else if (IEquals(name, "connection")) {
      if (IContains(value, "close")) keep_alive = false;
      if (IContains(value, "keep-alive")) keep_alive = true;
    } else if (IEquals(name, "transfer-encoding")) {
      chunked = IContains(value, "chunked");
    }
  }
  if (bad_length || content_length > max_body) {
    return error(413, "Payload Too Large", "bad or too large Content-Length\n");
  }
  if (chunked) {
    return error(501, "Not Implemented", "chunked request bodies are not supported\n");
  }
  const size_t total = head_end + 4 + content_length;
  if (in.size() < total) return r;  // the body is still coming
  r.state = HttpRequestParse::State::kRequest;
  r.size = total;
  r.body = in.substr(head_end + 4, content_length);
  r.keep_alive = keep_alive;
  return r;
}

}  // namespace drover::services
