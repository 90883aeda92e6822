// The guardian (backends/process/guardian.h) with real processes: groups the
// worker still watches when it goes away are SIGKILLed, groups it forgot
// are not, and the spool record lists the watched ones.
//
// The test process plays the worker: it starts a Guardian, forks children
// that lead their own process groups and wait in pause(), watches and
// forgets them, and then drops the Guardian, which closes its end of the
// socket as a dying worker would. The children are ours, so waitpid tells
// exactly how each one ended; each is killed and reaped at the end whatever
// happened. The marker is one no process carries, so the guardian's scan
// by marker kills nothing.
#include "backends/process/guardian.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "backends/process/process_group.h"

namespace drover {
namespace {

// A child leading its own process group, waiting to be killed; SIGKILLed
// and reaped when it goes out of scope unless the test reaped it.
class PausedGroup {
 public:
  PausedGroup() {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      for (;;) ::pause();
    }
    // Both sides set the group, so that it exists when either returns.
    if (pid_ > 0) ::setpgid(pid_, pid_);
  }
  ~PausedGroup() {
    if (pid_ <= 0 || reaped_) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  PausedGroup(const PausedGroup&) = delete;
  PausedGroup& operator=(const PausedGroup&) = delete;

  pid_t pid() const { return pid_; }
  // Whether it still runs, without waiting.
  bool Running() {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = status;
    }
    return r == 0;
  }
  // Waits for it to end (its pidfd becomes readable), up to 30 s, and
  // returns its wait status, or -1 when it still runs.
  int Reap() {
    if (!reaped_) {
      const int pidfd = PidfdOpen(pid_);
      if (pidfd >= 0) {
        pollfd p{pidfd, POLLIN, 0};
        ::poll(&p, 1, 30'000);
        ::close(pidfd);
      }
      Running();  // reaps it if it ended
    }
    return reaped_ ? status_ : -1;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

std::string RecordText(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class GuardianTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/drover-guardian-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    marker_ = "guardian-test-" + std::to_string(::getpid()) + "-nobody-carries-it";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::filesystem::path dir_;
  std::string marker_;
};

// Given a guardian told of two groups, one of them forgotten, when the
// worker's end of the socket closes, then the watched group should be
// SIGKILLed and the forgotten one left running.
TEST_F(GuardianTest, KillsTheGroupsStillWatchedWhenTheWorkerGoes) {
  PausedGroup watched, forgotten;
  ASSERT_GT(watched.pid(), 0);
  ASSERT_GT(forgotten.pid(), 0);
  auto guardian = Guardian::Start(GuardianOptions{marker_, dir_ / kGuardianSpoolFile});
  ASSERT_TRUE(guardian.ok()) << guardian.status().ToString();
  (*guardian)->Watch(watched.pid());
  (*guardian)->Watch(forgotten.pid());
  (*guardian)->Forget(forgotten.pid());

  guardian->reset();  // closes the socket and waits for the guardian to exit

  const int status = watched.Reap();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the watched group ended with wait status " << status;
  EXPECT_TRUE(forgotten.Running()) << "the forgotten group was killed";
}

// Given watched groups, the guardian's record (SPOOL/task-groups) should
// come to list them, under the marker, within its once-a-second rewrite,
// and drop a group once it is forgotten.
TEST_F(GuardianTest, RecordListsTheWatchedGroups) {
  PausedGroup first, second;
  ASSERT_GT(first.pid(), 0);
  ASSERT_GT(second.pid(), 0);
  const std::filesystem::path record = dir_ / kGuardianSpoolFile;
  auto guardian = Guardian::Start(GuardianOptions{marker_, record});
  ASSERT_TRUE(guardian.ok()) << guardian.status().ToString();
  (*guardian)->Watch(first.pid());
  (*guardian)->Watch(second.pid());

  const std::string both = "marker " + marker_ + "\n" +
                           std::to_string(std::min(first.pid(), second.pid())) + "\n" +
                           std::to_string(std::max(first.pid(), second.pid())) + "\n";
  // Polled, with a deadline far past the guardian's 1 s period.
  const auto until = [&](const std::string& want) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (RecordText(record) != want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return RecordText(record);
  };
  EXPECT_EQ(until(both), both);

  (*guardian)->Forget(first.pid());
  const std::string one =
      "marker " + marker_ + "\n" + std::to_string(second.pid()) + "\n";
  EXPECT_EQ(until(one), one);

  (*guardian)->Forget(second.pid());
  guardian->reset();
  EXPECT_FALSE(std::filesystem::exists(record)) << "the guardian left its record behind";
  EXPECT_TRUE(first.Running());
  EXPECT_TRUE(second.Running());
}

// Watch and Forget keep one bit per process id: neighbours in the same
// word of the table do not disturb each other, and ids no Linux process
// can have are ignored.
TEST_F(GuardianTest, TableKeepsOneBitPerProcessId) {
  PausedGroup a, b;
  ASSERT_GT(a.pid(), 0);
  ASSERT_GT(b.pid(), 0);
  auto guardian = Guardian::Start(GuardianOptions{marker_, {}});
  ASSERT_TRUE(guardian.ok()) << guardian.status().ToString();
  Guardian& g = **guardian;
  g.Watch(a.pid());
  g.Watch(b.pid());
  EXPECT_TRUE(g.Watching(a.pid()));
  EXPECT_TRUE(g.Watching(b.pid()));
  g.Forget(a.pid());
  EXPECT_FALSE(g.Watching(a.pid()));
  EXPECT_TRUE(g.Watching(b.pid()));
  for (pid_t id = a.pid() & ~63; id < (a.pid() | 63); ++id) {  // a's word
    EXPECT_EQ(g.Watching(id), id == b.pid()) << id;
  }

  for (pid_t bad :
       {pid_t{-5}, pid_t{0}, pid_t{1}, static_cast<pid_t>(Guardian::Table::kPids)}) {
    g.Watch(bad);
    EXPECT_FALSE(g.Watching(bad)) << bad;
  }
  g.Forget(b.pid());
  EXPECT_FALSE(g.Watching(b.pid()));
  guardian->reset();
  EXPECT_TRUE(a.Running());
  EXPECT_TRUE(b.Running());
}

}  // namespace
}  // namespace drover
