// The fork backend's IPC channel: newline-delimited JSON over a Unix stream
// socket, exactly the framing of Node's child_process IPC in its default
// "json" serialization (lib/internal/child_process/serialization.js): each
// message is JSON.stringify(value) followed by "\n", and a reader splits the
// byte stream on "\n". A pool process finds its end on fd 3, announced by
// NODE_CHANNEL_FD=3 and NODE_CHANNEL_SERIALIZATION_MODE=json, so an
// unmodified Node child written for child_process.fork works as one.
//
// This file holds the pieces both ends share: the message cap, a buffered
// line reader, the one-syscall message writer, Node's "internal message"
// test, and SCM_RIGHTS descriptor passing (used by the zygote).
#ifndef DROVER_BACKENDS_FORK_IPC_CHANNEL_H_
#define DROVER_BACKENDS_FORK_IPC_CHANNEL_H_

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/process/unique_fd.h"
#include "core/base/status.h"

namespace drover {

// The largest message (without its "\n") either side accepts: a reply that
// grows past it without a newline fails its task, and the channel, now out
// of step, is closed with its process.
inline constexpr size_t kMaxMessageBytes = size_t{16} << 20;  // 16 MiB

// The descriptor a pool process finds its channel on, and the environment
// that announces it (what Node's child_process.fork sets).
inline constexpr int kChannelFd = 3;
inline constexpr char kChannelFdEnv[] = "NODE_CHANNEL_FD";
inline constexpr char kChannelModeEnv[] = "NODE_CHANNEL_SERIALIZATION_MODE";

// Splits what arrives on a descriptor into lines. Reads go straight into
// one growing buffer (no per-read copies); a line is handed out as a view
// into it. Not thread-safe: one owner.
class LineReader {
 public:
  explicit LineReader(size_t max_line = kMaxMessageBytes);

  enum class Fill {
    kData,      // read some bytes (maybe no complete line yet)
    kAgain,     // nothing to read now (non-blocking descriptor)
    kEof,       // the peer closed its end
    kError,     // read failed; errno-style text in error()
  };
  // One read(2) into the buffer's free space (at least 64 KiB; the buffer
  // grows geometrically while a large message arrives). EINTR is retried.
  Fill FillFrom(int fd);

  // The next complete line, without its "\n", or false when none is
  // buffered. The view is valid until the next FillFrom. The line may be
  // longer than the cap (when its newline came in the same read): the
  // caller checks its size.
  bool NextLine(std::string_view* line);

  // True once the buffered bytes after the last complete line exceed the
  // cap: the peer sent an oversized message and the stream cannot be
  // resynchronised.
  bool oversize() const;
  // Whether the last FillFrom filled all the free space it had: more may
  // be waiting. A short read means the descriptor was drained.
  bool last_read_full() const { return last_full_; }
  // Bytes buffered that are not part of a complete line yet.
  size_t pending() const { return end_ - begin_; }
  const std::string& error() const { return error_; }

 private:
  void MakeRoom(size_t want);

  size_t max_line_;
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;  // first byte of the next line
  size_t scan_ = 0;   // bytes before this hold no "\n" (from begin_)
  size_t end_ = 0;    // end of the buffered bytes
  bool last_full_ = false;
  size_t last_line_ = 0;  // size of the last line handed out
  std::string error_;
};

// One outgoing message as up to three slices (a head, the body, a tail such
// as "\n"), written with one sendmsg(2) when the socket has room and resumed
// where it stopped when it does not. The slices must stay valid until Done().
class MessageWriter {
 public:
  MessageWriter() = default;
  void Reset(std::string_view head, std::string_view body, std::string_view tail);

  enum class Write { kDone, kAgain, kClosed, kError };
  // Writes as much as the socket takes now. kClosed: the peer is gone
  // (EPIPE/ECONNRESET). Never raises SIGPIPE.
  Write WriteTo(int fd);
  bool done() const { return count_ == 0; }

 private:
  iovec iov_[3] = {};
  int first_ = 0;
  int count_ = 0;
};

// Whether a decoded message is one of Node's internal messages: an object
// whose "cmd" is a string starting with "NODE_" (and longer than that).
// Node routes those to 'internalMessage', never to the user's 'message'
// handler; drover likewise never takes one for a reply. `line` must be
// valid JSON.
bool IsNodeInternalMessage(std::string_view line);

// `text` without leading and trailing JSON whitespace (space, \t, \r, \n).
std::string_view TrimJsonSpace(std::string_view text);

// A connected pair of Unix sockets, both close-on-exec. `type` is
// SOCK_STREAM (the IPC channel) or SOCK_SEQPACKET (the zygote's control).
// A stream pair's ends ask for a send buffer of kChannelSendBuffer (the
// kernel grants at most net.core.wmem_max), so that a message of
// megabytes moves in a few writes.
inline constexpr int kChannelSendBuffer = 4 << 20;
Status MakeSocketPair(int type, UniqueFd* a, UniqueFd* b);

// Sends one packet `data` with `fds` attached (SCM_RIGHTS). Blocking;
// MSG_NOSIGNAL. At most 4 descriptors.
Status SendPacket(int sock, std::string_view data, const std::vector<int>& fds);

// Receives one packet of at most `max_bytes` into `data`, and the
// descriptors that came with it (close-on-exec) into `fds`. Waits at most
// `timeout_ms` (-1: forever). kUnavailable on EOF, kDeadlineExceeded on
// timeout.
Status ReceivePacket(int sock, size_t max_bytes, int timeout_ms, std::string* data,
                     std::vector<UniqueFd>* fds);

}  // namespace drover

#endif  // DROVER_BACKENDS_FORK_IPC_CHANNEL_H_
