// ChildEnv: the environment block of a child process, built before it is
// launched: this process's environment, minus the keys in `drop`, with
// `set` added or overriding (the last value of a repeated key wins), the
// set entries last.
//
// With nothing to set or drop it is `environ` itself, so the common case
// copies nothing. Built in the parent: a fork()ed child of a multithreaded
// process may not allocate before exec.
//
// Not thread-safe; must outlive the launch that uses envp().
#ifndef DROVER_BACKENDS_PROCESS_CHILD_ENV_H_
#define DROVER_BACKENDS_PROCESS_CHILD_ENV_H_

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace drover {

class ChildEnv {
 public:
  using Vars = std::span<const std::pair<std::string, std::string>>;

  explicit ChildEnv(Vars set, const std::vector<std::string_view>& drop = {});
  ChildEnv(const ChildEnv&) = delete;
  ChildEnv& operator=(const ChildEnv&) = delete;

  // NULL-terminated, for execve / posix_spawn.
  char* const* envp() const { return envp_; }
  // The value of a key of `set`, writable in place (a forked child writes
  // its own pid into LISTEN_PID's); nullptr when `set` has no such key.
  char* MutableValue(std::string_view key);

 private:
  std::vector<std::string> storage_;  // "KEY=VALUE", one per key of `set`
  std::vector<size_t> key_len_;
  std::vector<char*> pointers_;
  char* const* envp_;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_CHILD_ENV_H_
