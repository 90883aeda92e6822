// The request loop of a `cow` pool process (forked by the zygote).
//
// Requests and replies are lines on the IPC channel (ipc_channel.h):
//   request:  {"fn": NAME, "args": ARGS}
//   reply:    {"result": VALUE}
//          or {"error": TEXT, "reason": "exit" | "launch-failed", "exit_code": N}
// A function's outcome maps as in FunctionRegistry::Invoke: an unknown name
// or bad args are launch-failed, an error or exception is exit 1. A crash
// (SIGSEGV, abort) kills only this process; the backend reports it.
//
// `sort` over a plain JSON array of integers takes a text-level fast path
// (json_scan.h) with the same result as the built-in, byte for byte: a DOM
// parse of a million numbers costs more than the sort.
#ifndef DROVER_BACKENDS_FORK_COW_CHILD_H_
#define DROVER_BACKENDS_FORK_COW_CHILD_H_

#include <functional>
#include <string>
#include <string_view>

#include "backends/fork/json_scan.h"
#include "backends/functions/registry.h"

namespace drover {

class CowMailbox;  // cow_mailbox.h

// Runs one request line and appends the reply line (ending in "\n") to
// `reply`. Never throws. `send_part`, when given, is handed a large
// reply's first parts (1 MiB or more each) while the rest is written, and
// may send and clear them; the rest stays in `reply`.
void HandleCowRequest(const FunctionRegistry& registry, std::string_view request,
                      std::string* reply,
                      const std::function<void(std::string*)>& send_part = {});

// Serves requests on `fd` (blocking) until the channel closes, then exits
// the process with _exit(0) (never runs the worker's atexit handlers or
// static destructors). Flushes stdout and stderr before each reply, so a
// function's output is attributed to its task. With `mailbox` (may be
// null), requests and replies that fit go through it (cow_mailbox.h), the
// others through `fd`.
[[noreturn]] void RunCowChild(const FunctionRegistry& registry, int fd,
                              CowMailbox* mailbox = nullptr);

}  // namespace drover

#endif  // DROVER_BACKENDS_FORK_COW_CHILD_H_
