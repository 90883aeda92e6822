#include "backends/process/guardian.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#include "backends/process/process_group.h"

namespace drover {
namespace {

// One message: 'W' (watch) or 'F' (forget), then the pgid in host order.
constexpr size_t kMessageBytes = 1 + sizeof(int32_t);

// The spool record: "marker TOKEN", then one pgid a line. Rewritten in
// place on each change (pwrite at 0, then truncate), in a file kept open:
// a rewrite through a temporary file and a rename cost an inode allocation
// and a free per change, twice per task, which on ext4 grows expensive in
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

  void Write(const std::set<pid_t>& groups) {
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

// The guardian's whole life: read messages until the worker is gone, then
// kill what it still knows. Never returns.
[[noreturn]] void GuardianMain(int read_fd, const std::string& marker,
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

  std::set<pid_t> groups;
  Record record(spool_file, marker);
  record.Write(groups);
  char buf[kMessageBytes * 256];
  size_t have = 0;
  for (;;) {
    ssize_t n = ::read(read_fd, buf + have, sizeof(buf) - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF (or a broken pipe): the worker is gone
    have += static_cast<size_t>(n);
    size_t at = 0;
    for (; have - at >= kMessageBytes; at += kMessageBytes) {
      int32_t pgid;
      std::memcpy(&pgid, buf + at + 1, sizeof(pgid));
      if (pgid <= 1) continue;
      if (buf[at] == 'W') {
        groups.insert(pgid);
      } else {
        groups.erase(pgid);
      }
    }
    std::memmove(buf, buf + at, have - at);
    have -= at;
    record.Write(groups);
  }
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
  std::ifstream in("/proc/" + pid + "/environ", std::ios::binary);
  std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
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
  // Flushed now, or the child would inherit (and never write) our buffers.
  std::fflush(nullptr);
  const std::string spool = options.spool_file.string();
  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("guardian: fork", errno);
  if (pid == 0) {
    write_end.Reset();
    GuardianMain(read_end.get(), options.marker, spool);
  }
  read_end.Reset();
  // The worker never reads from it: its end only writes.
  ::shutdown(write_end.get(), SHUT_RD);
  return std::shared_ptr<Guardian>(new Guardian(pid, std::move(write_end)));
}

Guardian::~Guardian() {
  // EOF: the guardian kills what is left (normally nothing) and exits.
  write_end_.Reset();
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

void Guardian::Watch(pid_t pgid) { Send('W', pgid); }
void Guardian::Forget(pid_t pgid) { Send('F', pgid); }

void Guardian::Send(char op, pid_t pgid) {
  char msg[kMessageBytes];
  msg[0] = op;
  const int32_t value = pgid;
  std::memcpy(msg + 1, &value, sizeof(value));
  ssize_t n;
  do {
    // Never blocks, never raises SIGPIPE: a guardian that died or stalled
    // must not stop the worker.
    n = ::send(write_end_.get(), msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  // A full socket means a stalled guardian; losing a message costs only the
  // protection of that group, never a wrong kill (a lost Forget leaves a
  // group whose leader is reaped, and SignalGroup on a free id is ESRCH;
  // the ids are reused only after the pid space wraps).
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
