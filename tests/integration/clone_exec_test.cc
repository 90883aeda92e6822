// backends/process/clone_exec.h: the child's duties before its exec, seen
// from inside real children (their /proc/self/status), and its failures.
#include "backends/process/clone_exec.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace drover {
namespace {

namespace fs = std::filesystem;

extern "C" void Noop(int) {}

class CloneExecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(exec_.Init().ok());
    const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    devnull_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);  // above what a test numbers
    ::close(fd);
    ASSERT_GE(devnull_, 10);
    std::string tmpl = (fs::temp_directory_path() / "drover-clone-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ::close(devnull_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs argv with stdout into a pipe; returns what it printed and its exit
  // status, or fails the test. The child is reaped here, by its pid.
  std::string RunAndRead(std::vector<std::string> args,
                         const char* path = "/usr/bin:/bin", int fd3 = -1,
                         int* exit_status = nullptr) {
    int out[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    const int write_end = ::fcntl(out[1], F_DUPFD_CLOEXEC, 4);
    ::close(out[1]);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    char* envp[] = {nullptr};
    CloneExecSpec spec;
    spec.argv = argv.data();
    spec.envp = envp;
    spec.path = path;
    spec.fds[0] = devnull_;
    spec.fds[1] = write_end;
    spec.fds[2] = devnull_;
    spec.fds[3] = fd3;
    sigemptyset(&spec.defaults);
    sigaddset(&spec.defaults, SIGPIPE);
    CloneExec::Started started = exec_.Start(spec);
    ::close(write_end);
    std::string text;
    if (started.error != 0) {
      ADD_FAILURE() << started.stage << ": " << std::strerror(started.error);
      ::close(out[0]);
      return text;
    }
    EXPECT_TRUE(started.pidfd.valid());
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof buf)) > 0)
      text.append(buf, static_cast<size_t>(n));
    ::close(out[0]);
    int status = 0;
    EXPECT_EQ(::waitpid(started.pid, &status, 0), started.pid);
    if (exit_status != nullptr) *exit_status = status;
    return text;
  }

  CloneExec::Started StartFailing(const char* name, const char* path,
                                  const char* cwd = nullptr) {
    std::string arg0 = name;
    char* argv[] = {arg0.data(), nullptr};
    char* envp[] = {nullptr};
    CloneExecSpec spec;
    spec.argv = argv;
    spec.envp = envp;
    spec.path = path;
    spec.cwd = cwd;
    for (int i = 0; i < 3; ++i) spec.fds[i] = devnull_;
    sigemptyset(&spec.defaults);
    return exec_.Start(spec);
  }

  // A field of a /proc/PID/status text, as hex for the Sig* masks.
  static std::map<std::string, std::string> Fields(const std::string& status) {
    std::map<std::string, std::string> fields;
    std::istringstream in(status);
    std::string line;
    while (std::getline(in, line)) {
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      fields[line.substr(0, colon)] = value;
    }
    return fields;
  }
  static bool Has(const std::string& hex_mask, int sig) {
    return (std::stoull(hex_mask, nullptr, 16) >> (sig - 1)) & 1;
  }

  CloneExec exec_;
  int devnull_ = -1;
  fs::path dir_;
};

// Given a caller that handles SIGUSR1, ignores SIGUSR2 and SIGPIPE and
// blocks SIGTERM, a child should start with nothing blocked, SIGUSR2 still
// ignored, SIGPIPE (one of the defaults) not, nothing caught, and a
// process group of its own.
TEST_F(CloneExecTest, ChildStartsWithTheSignalsAndGroupOfAFreshProcess) {
  struct sigaction handler {};
  handler.sa_handler = Noop;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_usr1, old_usr2, old_pipe;
  ASSERT_EQ(::sigaction(SIGUSR1, &handler, &old_usr1), 0);
  ASSERT_EQ(::sigaction(SIGUSR2, &ignore, &old_usr2), 0);
  ASSERT_EQ(::sigaction(SIGPIPE, &ignore, &old_pipe), 0);
  sigset_t term, old_mask;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old_mask), 0);

  const std::string status = RunAndRead({"cat", "/proc/self/status"});
  std::string stat = RunAndRead({"cat", "/proc/self/stat"});

  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGUSR1, &old_usr1, nullptr);
  ::sigaction(SIGUSR2, &old_usr2, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);

  auto fields = Fields(status);
  ASSERT_TRUE(fields.count("SigBlk") && fields.count("SigIgn") && fields.count("SigCgt"))
      << status;
  EXPECT_EQ(std::stoull(fields["SigBlk"], nullptr, 16), 0u) << status;
  EXPECT_TRUE(Has(fields["SigIgn"], SIGUSR2)) << status;
  EXPECT_FALSE(Has(fields["SigIgn"], SIGPIPE)) << status;
  EXPECT_EQ(std::stoull(fields["SigCgt"], nullptr, 16), 0u) << status;
  // /proc/self/stat: pid (comm) state ppid pgrp ...
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string state;
  long ppid = 0, pgrp = 0;
  in >> state >> ppid >> pgrp;
  const long pid = std::stol(stat);
  EXPECT_EQ(pgrp, pid) << stat;
  EXPECT_EQ(ppid, ::getpid()) << stat;
}

// Given a descriptor for fd 3, the child should write to it there, and
// have none of ours that are close-on-exec (what the test's own parent
// left open without the flag is not ours to judge).
TEST_F(CloneExecTest, Fd3IsPassedAndNothingElse) {
  int channel[2];
  ASSERT_EQ(::pipe2(channel, O_CLOEXEC), 0);
  // Both ends above the numbers the child's own descriptors take.
  const int fd3 = ::fcntl(channel[1], F_DUPFD_CLOEXEC, 10);
  ::close(channel[1]);
  const int read_end = ::fcntl(channel[0], F_DUPFD_CLOEXEC, 10);
  ::close(channel[0]);
  channel[0] = read_end;
  RunAndRead({"sh", "-c", "echo hi >&3"}, "/usr/bin:/bin", fd3);
  const std::string fds = RunAndRead({"ls", "/proc/self/fd"}, "/usr/bin:/bin", fd3);
  char buf[16] = {};
  EXPECT_EQ(::read(channel[0], buf, sizeof buf), 3);
  EXPECT_STREQ(buf, "hi\n");
  std::istringstream in(fds);
  std::vector<int> open;
  for (int fd; in >> fd;) open.push_back(fd);
  for (int fd : {0, 1, 2, 3}) {
    EXPECT_NE(std::find(open.begin(), open.end(), fd), open.end()) << fd << " in " << fds;
  }
  for (int fd : {devnull_, fd3, channel[0]}) {
    EXPECT_EQ(std::find(open.begin(), open.end(), fd), open.end()) << fd << " in " << fds;
  }
  ::close(fd3);
  ::close(channel[0]);
}

// Given a $PATH whose first directory holds a non-executable file of the
// name, the search should go on to the executable one (execvp's rules);
// with that directory alone it should fail EACCES, and a name found
// nowhere ENOENT, reaped, at the exec.
TEST_F(CloneExecTest, PathSearchFollowsExecvp) {
  const fs::path denied = dir_ / "denied";
  const fs::path good = dir_ / "good";
  fs::create_directories(denied);
  fs::create_directories(good);
  std::ofstream(denied / "drover-tool") << "#!/bin/sh\necho denied\n";
  std::ofstream(good / "drover-tool") << "#!/bin/sh\necho good\n";
  ::chmod((denied / "drover-tool").c_str(), 0644);
  ::chmod((good / "drover-tool").c_str(), 0755);
  const std::string path =
      (dir_ / "missing").string() + ":" + denied.string() + ":" + good.string();
  EXPECT_EQ(RunAndRead({"drover-tool"}, path.c_str()), "good\n");

  CloneExec::Started only_denied = StartFailing("drover-tool", denied.c_str());
  EXPECT_EQ(only_denied.error, EACCES);
  EXPECT_STREQ(only_denied.stage, "exec");
  CloneExec::Started nowhere = StartFailing("drover-no-such-tool", path.c_str());
  EXPECT_EQ(nowhere.error, ENOENT);
  EXPECT_STREQ(nowhere.stage, "exec");
  EXPECT_EQ(nowhere.pid, -1);
  EXPECT_FALSE(nowhere.pidfd.valid());
  // Both failed children were reaped by Start.
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

// Given a cwd that does not exist, the child should fail there, before the
// exec, with its errno.
TEST_F(CloneExecTest, BadCwdFailsAtTheChdir) {
  const std::string cwd = (dir_ / "nope").string();
  CloneExec::Started started = StartFailing("true", "/usr/bin:/bin", cwd.c_str());
  EXPECT_EQ(started.error, ENOENT);
  EXPECT_STREQ(started.stage, "chdir");
}

// Given a name with a '/', the child should exec exactly that file, not
// search; given a relative one, relative to its cwd.
TEST_F(CloneExecTest, ANameWithASlashIsNotSearched) {
  std::ofstream(dir_ / "here") << "#!/bin/sh\necho here\n";
  ::chmod((dir_ / "here").c_str(), 0755);
  EXPECT_EQ(RunAndRead({(dir_ / "here").string()}, "/nonexistent"), "here\n");
  CloneExec::Started relative = StartFailing("./here", "/usr/bin:/bin", "/");
  EXPECT_EQ(relative.error, ENOENT);
}

}  // namespace
}  // namespace drover
