// ChildLauncher: starts one attempt's process with posix_spawnp.
//
// The child leads a new process group (pgid = pid), starts with an empty
// signal mask and default dispositions for the signals a supervisor relies
// on, reads stdin from /dev/null and writes stdout/stderr into pipes (or to
// /dev/null when the attempt gives no path for the stream). Every descriptor
// of ours is close-on-exec, so the child gets exactly 0, 1 and 2. The
// environment is the worker's with the attempt's `env` added or overriding.
//
// Not thread-safe: the spawn reactor owns it.
#ifndef DROVER_BACKENDS_SPAWN_CHILD_LAUNCHER_H_
#define DROVER_BACKENDS_SPAWN_CHILD_LAUNCHER_H_

#include <spawn.h>
#include <sys/types.h>

#include "backends/spawn/spawn_attempt.h"
#include "backends/spawn/unique_fd.h"
#include "core/base/status.h"

namespace drover {

// A running child. The leader is not reaped yet: the caller owns that.
struct LaunchedChild {
  pid_t pid = -1;  // also its process group id
  UniqueFd pidfd;  // readable when the leader exits
  UniqueFd out;    // read end of its stdout pipe (O_NONBLOCK), or none
  UniqueFd err;    // read end of its stderr pipe (O_NONBLOCK), or none
};

class ChildLauncher {
 public:
  ChildLauncher() = default;
  ~ChildLauncher();
  ChildLauncher(const ChildLauncher&) = delete;
  ChildLauncher& operator=(const ChildLauncher&) = delete;

  // Opens /dev/null and prepares the spawn attributes shared by every
  // launch. On failure the launcher is unusable.
  Status Init();

  // Starts `attempt`. On failure no process is left behind, and the Status
  // message is the one users see: "command not found: foo",
  // "permission denied: ./x", "cwd '/nope': No such file or directory",
  // or "argv0: <errno text>". The code is kInternal when drover itself
  // failed (the child could not be watched), another code when the attempt
  // could not be launched.
  //
  // `channel_fd` (the fork backend's IPC channel), when >= 0, becomes the
  // child's fd 3; it must be a descriptor numbered above 3.
  Result<LaunchedChild> Launch(const SpawnAttempt& attempt, int channel_fd = -1);

 private:
  UniqueFd devnull_;  // O_RDWR: stdin, and stdout/stderr nobody captures
  posix_spawnattr_t attr_{};
  bool attr_ready_ = false;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_SPAWN_CHILD_LAUNCHER_H_
