#include "backends/fork/ipc_channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>

#include <nlohmann/json.hpp>

namespace drover {
namespace {

// Reads land in at least this much free space; the buffer grows
// geometrically past it for large messages.
constexpr size_t kMinRead = 64 * 1024;
// An empty reader holding more than this, and much more than its last
// line needed, frees it.
constexpr size_t kShrinkAbove = 1 << 20;
constexpr size_t kMaxPacketFds = 4;

}  // namespace

// ---------------------------------------------------------------------------
// LineReader

LineReader::LineReader(size_t max_line) : max_line_(max_line) {}

void LineReader::MakeRoom(size_t want) {
  if (begin_ == end_) {
    begin_ = scan_ = end_ = 0;
    // Keep the buffer while messages stay large: fresh memory costs a page
    // fault per page, which dominates moving a large message. Once they
    // are small again, give it back rather than hold up to twice the cap
    // per process.
    if (capacity_ > kShrinkAbove && capacity_ > 4 * (last_line_ + kMinRead)) {
      data_.reset();
      capacity_ = 0;
    }
  }
  if (capacity_ - end_ >= want) return;
  // Drop the consumed prefix first: usually that is everything, and the
  // buffer never moves or grows for small messages.
  if (begin_ > 0) {
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    scan_ -= begin_;
    begin_ = 0;
    if (capacity_ - end_ >= want) return;
  }
  size_t capacity = std::max(capacity_ * 2, end_ + want);
  // Not zero-filled: every byte is written by read(2) before it is used.
  auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
  if (end_ > 0) std::memcpy(bigger.get(), data_.get(), end_);
  data_ = std::move(bigger);
  capacity_ = capacity;
}

LineReader::Fill LineReader::FillFrom(int fd) {
  // One read per call: on a blocking descriptor a second one could wait
  // for bytes that never come while a complete line sits in the buffer.
  MakeRoom(kMinRead);
  const size_t room = capacity_ - end_;
  ssize_t n;
  do {
    n = ::read(fd, data_.get() + end_, room);
  } while (n < 0 && errno == EINTR);
  last_full_ = n > 0 && static_cast<size_t>(n) == room;
  if (n > 0) {
    end_ += static_cast<size_t>(n);
    return Fill::kData;
  }
  if (n == 0) return Fill::kEof;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return Fill::kAgain;
  if (errno == ECONNRESET) return Fill::kEof;
  error_ = std::strerror(errno);
  return Fill::kError;
}

bool LineReader::NextLine(std::string_view* line) {
  if (scan_ < begin_) scan_ = begin_;
  const void* nl = scan_ < end_ ? std::memchr(data_.get() + scan_, '\n', end_ - scan_)
                                : nullptr;
  if (nl == nullptr) {
    scan_ = end_;
    return false;
  }
  const size_t at = static_cast<size_t>(static_cast<const char*>(nl) - data_.get());
  *line = std::string_view(data_.get() + begin_, at - begin_);
  last_line_ = line->size();
  begin_ = at + 1;
  scan_ = begin_;
  return true;
}

bool LineReader::oversize() const { return end_ - begin_ > max_line_; }

// ---------------------------------------------------------------------------
// MessageWriter

void MessageWriter::Reset(std::string_view head, std::string_view body,
                          std::string_view tail) {
  first_ = 0;
  count_ = 0;
  for (std::string_view part : {head, body, tail}) {
    if (part.empty()) continue;
    iov_[count_].iov_base = const_cast<char*>(part.data());
    iov_[count_].iov_len = part.size();
    ++count_;
  }
}

MessageWriter::Write MessageWriter::WriteTo(int fd) {
  while (count_ > 0) {
    msghdr msg{};
    msg.msg_iov = iov_ + first_;
    msg.msg_iovlen = static_cast<size_t>(count_);
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Write::kAgain;
      if (errno == EPIPE || errno == ECONNRESET) return Write::kClosed;
      return Write::kError;
    }
    auto left = static_cast<size_t>(n);
    while (count_ > 0 && left >= iov_[first_].iov_len) {
      left -= iov_[first_].iov_len;
      ++first_;
      --count_;
    }
    if (count_ > 0) {
      iov_[first_].iov_base = static_cast<char*>(iov_[first_].iov_base) + left;
      iov_[first_].iov_len -= left;
    }
  }
  return Write::kDone;
}

// ---------------------------------------------------------------------------
// Helpers

bool IsNodeInternalMessage(std::string_view line) {
  line = TrimJsonSpace(line);
  // Cheap filter first: only objects that mention NODE_ can qualify, and
  // replies are almost never that.
  if (line.empty() || line.front() != '{') return false;
  if (line.find("NODE_") == std::string_view::npos) return false;
  try {
    nlohmann::json value = nlohmann::json::parse(line);
    auto it = value.find("cmd");
    if (it == value.end() || !it->is_string()) return false;
    const std::string& cmd = it->get_ref<const std::string&>();
    return cmd.size() > 5 && cmd.compare(0, 5, "NODE_") == 0;
  } catch (const std::exception&) {
    return false;
  }
}

std::string_view TrimJsonSpace(std::string_view text) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  size_t b = 0, e = text.size();
  while (b < e && space(text[b])) ++b;
  while (e > b && space(text[e - 1])) --e;
  return text.substr(b, e - b);
}

Status MakeSocketPair(int type, UniqueFd* a, UniqueFd* b) {
  int fds[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) != 0) {
    return ErrnoError("socketpair", errno);
  }
  a->Reset(fds[0]);
  b->Reset(fds[1]);
  if (type == SOCK_STREAM) {
    // A few writes for a large message rather than a hundred (the
    // default is about 200 KiB; a million numbers are 10 MB each way).
    const int bytes = kChannelSendBuffer;
    for (int fd : fds)
      (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  }
  return Status::Ok();
}

Status SendPacket(int sock, std::string_view data, const std::vector<int>& fds) {
  if (fds.size() > kMaxPacketFds) return Internal("SendPacket: too many descriptors");
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPacketFds)];
  if (!fds.empty()) {
    const size_t bytes = sizeof(int) * fds.size();
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(bytes);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(bytes);
    std::memcpy(CMSG_DATA(cmsg), fds.data(), bytes);
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("sendmsg", errno);
  return Status::Ok();
}

Status ReceivePacket(int sock, size_t max_bytes, int timeout_ms, std::string* data,
                     std::vector<UniqueFd>* fds) {
  fds->clear();
  pollfd p{sock, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&p, 1, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return ErrnoError("poll", errno);
  if (ready == 0) return DeadlineExceeded("no answer");
  data->resize(max_bytes);
  iovec iov{data->data(), data->size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPacketFds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("recvmsg", errno);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds->emplace_back(fd);
    }
  }
  if (n == 0 && fds->empty()) return Unavailable("closed");
  data->resize(static_cast<size_t>(n));
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    return Internal("packet truncated");
  }
  return Status::Ok();
}

}  // namespace drover
