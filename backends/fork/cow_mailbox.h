// CowMailbox: the shared-memory half of a cow process's channel.
//
// A cow process (a fork of the worker's zygote) and the fork backend talk
// in requests and replies, one at a time: the backend sends a request
// only after the reply to the one before, the process replies only to a
// request. So each direction needs room for one message, not a queue: a
// slot in a shared mapping (a memfd the zygote makes with the process and
// hands to the backend beside the socket).
//
// A message that fits (kMaxMessage bytes, its "\n" left off) goes through
// the slot: the writer copies it in and bumps the slot's count. A reader
// that expects an answer within microseconds looks at the count for a
// while (Looking(true)) before it blocks on the socket; a writer that sees
// its reader looking writes nothing else, so a round trip between two
// looking ends makes no system call. A writer whose reader is not looking
// writes a bare "\n" on the socket, which wakes the reader and which both
// ends skip as an empty line. A larger message goes over the socket, as
// every message did before; the reader takes messages from both.
//
// The count and the looking flag are sequentially consistent, both ways:
// a reader sets Looking(false) and then looks at the count once more
// before it blocks, and a writer bumps the count and then reads the flag,
// so either the reader sees the message or the writer sees that it must
// ring (the store-buffer pattern; neither can miss both).
//
// Not thread-safe: each end has one owner. The slots hold no pointers, so
// the two processes may map them at different addresses.
#ifndef DROVER_BACKENDS_FORK_COW_MAILBOX_H_
#define DROVER_BACKENDS_FORK_COW_MAILBOX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "backends/process/unique_fd.h"
#include "core/base/status.h"

namespace drover {

class CowMailbox {
 public:
  // The largest message a slot takes.
  static constexpr size_t kMaxMessage = size_t{64} << 10;

  enum class Side { kBackend, kProcess };

  // A new mapping's descriptor (memfd, close-on-exec), sized and zeroed.
  static Result<UniqueFd> Create();
  // Maps `fd` (from Create, possibly in another process) as `side`'s end.
  static Result<std::unique_ptr<CowMailbox>> Map(int fd, Side side);
  ~CowMailbox();
  CowMailbox(const CowMailbox&) = delete;
  CowMailbox& operator=(const CowMailbox&) = delete;

  // Writer. The parts' sizes together at most kMaxMessage. Copies them in
  // as the next message; true when the reader is not looking and must be
  // woken (a "\n" on the socket).
  bool Post(std::string_view a, std::string_view b = {}, std::string_view c = {});

  // Reader. The message posted since the last Take, if any: a view into
  // the mapping, valid until the peer posts again (which it does only
  // after this end has answered).
  bool Take(std::string_view* message);
  // Whether Take would give a message: one atomic load.
  bool Waiting() const;
  // While looking, the writer does not ring: the reader must Take before
  // it blocks, after Looking(false).
  void Looking(bool on);

 private:
  struct Slot;
  struct Shared;
  CowMailbox(Shared* shared, Side side);

  Shared* shared_;
  Slot* out_;
  Slot* in_;
  uint64_t posted_ = 0;  // messages this end wrote
  uint64_t taken_ = 0;   // messages of the peer's this end took
};

}  // namespace drover

#endif  // DROVER_BACKENDS_FORK_COW_MAILBOX_H_
