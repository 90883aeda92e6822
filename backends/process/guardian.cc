#include "backends/process/guardian.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "backends/process/process_group.h"
#include "core/base/files.h"

namespace drover {
namespace {

using Table = Guardian::Table;

// How often, at most, the guardian rewrites its record of the live groups.
constexpr int kRecordEveryMs = 1000;

std::atomic_ref<uint64_t> Word(Table* table, pid_t pid) {
  return std::atomic_ref<uint64_t>(table->bits[static_cast<uint32_t>(pid) / 64]);
}
uint64_t Bit(pid_t pid) { return uint64_t{1} << (static_cast<uint32_t>(pid) % 64); }
bool InTable(pid_t pid) { return pid > 1 && static_cast<uint32_t>(pid) < Table::kPids; }

// The groups whose bits are set, in order.
std::vector<pid_t> LiveGroups(Table* table) {
  std::vector<pid_t> groups;
  for (uint32_t w = 0; w < Table::kPids / 64; ++w) {
    uint64_t word =
        std::atomic_ref<uint64_t>(table->bits[w]).load(std::memory_order_acquire);
    while (word != 0) {
      groups.push_back(static_cast<pid_t>(w * 64 + std::countr_zero(word)));
      word &= word - 1;
    }
  }
  return groups;
}

// The spool record: "marker TOKEN", then one pgid a line. Rewritten in
// place (pwrite at 0, then truncate) when the table changed, at most once
// a second, in a file kept open: a rewrite through a temporary file and a
// rename cost an inode allocation and a free per change, which on ext4 grows expensive in
// a directory with many recent deletes (docs/benchmarks.md, "One file fewer
// per attempt"). A reader never depends on a whole rewrite: the first line
// is the same bytes every time, and ClaimSpool needs only it (it
// kills by the marker, which every process of a recorded group carries);
// the groups are there for an operator to read.
class Record {
 public:
  Record(const std::string& path, std::string marker) : marker_(std::move(marker)) {
    if (path.empty()) return;
    // The record is a fallback: without it the guardian still works.
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  }
  ~Record() {
    if (fd_ >= 0) ::close(fd_);
  }
  Record(const Record&) = delete;
  Record& operator=(const Record&) = delete;

  void Write(const std::vector<pid_t>& groups) {
    if (fd_ < 0) return;
    text_ = "marker " + marker_ + "\n";
    for (pid_t g : groups) text_ += std::to_string(g) + "\n";
    if (::pwrite(fd_, text_.data(), text_.size(), 0) == static_cast<ssize_t>(text_.size())) {
      (void)::ftruncate(fd_, static_cast<off_t>(text_.size()));
    }
  }

 private:
  const std::string marker_;
  std::string text_;
  int fd_ = -1;
};

// SIGKILLs every process but `spare` and ourselves whose environment holds
// `entry` (NAME=VALUE). A few rounds: a process may fork while we scan.
// Returns how many it killed.
int KillMarked(const std::string& entry, pid_t spare);

// The guardian's whole life: sleep until the worker is gone (EOF on
// `read_fd`), waking once a second to rewrite the record when the table
// changed, then kill every group still in the table. Never returns.
[[noreturn]] void GuardianMain(int read_fd, Table* table, const std::string& marker,
                               const std::string& spool_file) {
  const pid_t worker = ::getppid();
  // The worker's terminal or supervisor may signal its whole group; the
  // guardian must outlive the worker to do its job, so only EOF ends it.
  ::setpgid(0, 0);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2}) {
    ::signal(sig, SIG_IGN);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_NAME, "drover-guardian", 0, 0, 0);
  // Hold nothing else of the worker's: a socket kept open here (the
  // zygote's control socket, a listening port) would outlive the worker.
  if ((read_fd > 3 && ::syscall(SYS_close_range, 3, read_fd - 1, 0) != 0) ||
      ::syscall(SYS_close_range, read_fd + 1, ~0U, 0) != 0) {
    for (int fd = 3; fd < 4096; ++fd) {  // kernels before 5.9
      if (fd != read_fd) ::close(fd);
    }
  }

  Record record(spool_file, marker);
  record.Write({});
  uint64_t recorded = 0;  // the table's change count the record shows
  for (;;) {
    pollfd p{read_fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, kRecordEveryMs);
    if (ready < 0 && errno != EINTR) break;
    if (ready > 0) {
      // The worker never writes: readable means EOF, or an error, and
      // either means the worker is gone.
      char byte;
      const ssize_t n = ::read(read_fd, &byte, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      continue;  // a byte from nobody we know: ignore it
    }
    const uint64_t changes =
        std::atomic_ref<uint64_t>(table->changes).load(std::memory_order_acquire);
    if (changes != recorded) {
      recorded = changes;
      record.Write(LiveGroups(table));
    }
  }
  // The worker is dead: its last Watch and Forget are all in the table.
  const std::vector<pid_t> groups = LiveGroups(table);
  for (pid_t g : groups) SignalGroup(g, SIGKILL);
  // A process that left its group (setsid, setpgid: a daemonizing
  // grandchild) escapes the group kill but not its environment: every
  // process started under this worker inherits DROVER_GUARDIAN=marker
  // unless it was exec'd with an environment of its own (guardian.h).
  KillMarked(std::string(kGuardianMarkerEnv) + "=" + marker, worker);
  // A worker restarted at once may already have its own record there:
  // remove the file only while it is still ours.
  if (!spool_file.empty()) {
    std::ifstream in(spool_file);
    std::string word, recorded;
    in >> word >> recorded;
    if (recorded == marker) ::unlink(spool_file.c_str());
  }
  ::_exit(0);
}

bool EnvironHas(const std::string& pid, const std::string& entry) {
  // A process that exits between the open and the read fails the read
  // (ESRCH): it has nothing left to kill, and the scan goes on.
  std::string env;
  if (ReadWholeFile("/proc/" + pid + "/environ", &env) != 0) return false;
  size_t start = 0;
  while (start < env.size()) {
    size_t end = env.find('\0', start);
    if (end == std::string::npos) end = env.size();
    if (env.compare(start, end - start, entry) == 0) return true;
    start = end + 1;
  }
  return false;
}

int KillMarked(const std::string& entry, pid_t spare) {
  const std::string self = std::to_string(::getpid());
  const std::string spared = std::to_string(spare);
  int killed = 0;
  for (int round = 0; round < 5; ++round) {
    int this_round = 0;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) break;
    while (dirent* d = ::readdir(proc)) {
      const std::string name = d->d_name;
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
        continue;
      if (name == self || name == spared) continue;
      if (!EnvironHas(name, entry)) continue;
      if (::kill(std::atoi(name.c_str()), SIGKILL) == 0) ++this_round;
    }
    ::closedir(proc);
    killed += this_round;
    if (this_round == 0) break;
  }
  return killed;
}

}  // namespace

std::string SetGuardianMarker() {
  unsigned char bytes[16] = {};
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  std::string token;
  char hex[3];
  for (unsigned char b : bytes) {
    std::snprintf(hex, sizeof(hex), "%02x", b);
    token += hex;
  }
  // Without entropy the pid and time still tell two workers apart.
  if (got < sizeof(bytes)) {
    token += "-" + std::to_string(::getpid()) + "-" + std::to_string(::time(nullptr));
  }
  ::setenv(kGuardianMarkerEnv, token.c_str(), 1);
  return token;
}

Result<std::shared_ptr<Guardian>> Guardian::Start(const GuardianOptions& options) {
  // A socket pair rather than a pipe: send(MSG_NOSIGNAL) to a dead
  // guardian fails with EPIPE instead of raising SIGPIPE in the worker, and
  // SOCK_SEQPACKET keeps each message whole.
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return ErrnoError("guardian: socketpair", errno);
  }
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // The table, shared with the guardian: 512 KiB, not reserved (the
  // worker touches the pages of the ids it watches; the guardian reads
  // them all when it writes its record).
  void* shared = ::mmap(nullptr, sizeof(Table), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (shared == MAP_FAILED) return ErrnoError("guardian: mmap", errno);
  auto* table = static_cast<Table*>(shared);
  // Flushed now, or the child would inherit (and never write) our buffers.
  std::fflush(nullptr);
  const std::string spool = options.spool_file.string();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::munmap(shared, sizeof(Table));
    return ErrnoError("guardian: fork", err);
  }
  if (pid == 0) {
    write_end.Reset();
    GuardianMain(read_end.get(), table, options.marker, spool);
  }
  read_end.Reset();
  // The worker never reads from it: its end only closes, at its death.
  ::shutdown(write_end.get(), SHUT_RD);
  // A child the worker forks later (ForkExec) must not share the table.
  (void)::madvise(shared, sizeof(Table), MADV_DONTFORK);
  return std::shared_ptr<Guardian>(new Guardian(pid, std::move(write_end), table));
}

Guardian::~Guardian() {
  // EOF: the guardian kills what is left (normally nothing) and exits.
  write_end_.Reset();
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  ::munmap(table_, sizeof(Table));
}

// Release: a guardian that reads the table after the worker's death sees
// every change made before it. The bit is set before the change is counted,
// so a record written for a count shows the bits of that count or later.
void Guardian::Watch(pid_t pgid) {
  if (!InTable(pgid)) return;  // no such pid on Linux (Table::kPids)
  Word(table_, pgid).fetch_or(Bit(pgid), std::memory_order_release);
  std::atomic_ref<uint64_t>(table_->changes).fetch_add(1, std::memory_order_release);
}

void Guardian::Forget(pid_t pgid) {
  if (!InTable(pgid)) return;
  Word(table_, pgid).fetch_and(~Bit(pgid), std::memory_order_release);
  std::atomic_ref<uint64_t>(table_->changes).fetch_add(1, std::memory_order_release);
}

bool Guardian::Watching(pid_t pgid) const {
  return InTable(pgid) &&
         (Word(table_, pgid).load(std::memory_order_acquire) & Bit(pgid)) != 0;
}

namespace {

// The lock of ClaimSpool: the descriptor holding it, FailedPrecondition when
// another live process holds it, any other error when it cannot be taken.
Result<UniqueFd> LockSpool(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoError("open " + path.string(), errno);
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(fd.get(), F_SETLK, &lock) == 0) return fd;
  const int err = errno;
  if (err != EACCES && err != EAGAIN) return ErrnoError("lock " + path.string(), err);
  struct flock holder {};
  holder.l_type = F_WRLCK;
  holder.l_whence = SEEK_SET;
  std::string who = "another process";
  if (::fcntl(fd.get(), F_GETLK, &holder) == 0 && holder.l_type != F_UNLCK) {
    who = "pid " + std::to_string(holder.l_pid);
  }
  return FailedPrecondition("the spool " + dir.string() + " is in use by " + who +
                            " (a live worker or drover run)");
}

// What an earlier owner of the spool left running (ClaimSpool).
int KillRecordedGroups(const std::filesystem::path& spool_file) {
  std::ifstream in(spool_file);
  if (!in) return 0;
  std::string word, marker;
  in >> word >> marker;
  in.close();
  int killed = 0;
  // Every process with the marker is the earlier worker's: those still in a
  // recorded group, and those that left it (setsid).
  if (word == "marker" && !marker.empty()) {
    // Appended, not `std::string(a) + "=" + b`: gcc 12 reports a false
    // -Warray-bounds on that operator+ chain when it is inlined (PR 105651).
    std::string entry(kGuardianMarkerEnv);
    entry.append("=").append(marker);
    killed = KillMarked(entry, -1);
  }
  std::error_code ec;
  std::filesystem::remove(spool_file, ec);
  return killed;
}

}  // namespace

Result<SpoolClaim> ClaimSpool(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  SpoolClaim claim;
  Result<UniqueFd> lock = LockSpool(dir);
  if (lock.ok()) {
    claim.lock = std::move(lock.value());
  } else if (lock.status().code() == StatusCode::kFailedPrecondition) {
    return lock.status();
  } else {
    claim.unlocked = lock.status().message();
  }
  claim.killed = KillRecordedGroups(dir / kGuardianSpoolFile);
  return claim;
}

}  // namespace drover
