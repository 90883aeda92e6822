// CowMailbox (backends/fork/cow_mailbox.h): a cow process's channel in
// shared memory. On real memfd mappings: within one process (both ends
// mapped here), and with a forked process that echoes, where a lost
// wake-up would leave a side blocked (each blocking read is bounded, so a
// loss fails the test instead of hanging it).
#include "backends/fork/cow_mailbox.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <string>

namespace drover {
namespace {

struct Ends {
  UniqueFd fd;
  std::unique_ptr<CowMailbox> backend, process;
};

Ends MapBoth() {
  Ends e;
  auto fd = CowMailbox::Create();
  EXPECT_TRUE(fd.ok()) << fd.status().ToString();
  if (!fd.ok()) return e;
  e.fd = std::move(fd.value());
  auto b = CowMailbox::Map(e.fd.get(), CowMailbox::Side::kBackend);
  auto p = CowMailbox::Map(e.fd.get(), CowMailbox::Side::kProcess);
  EXPECT_TRUE(b.ok() && p.ok());
  if (b.ok()) e.backend = std::move(b.value());
  if (p.ok()) e.process = std::move(p.value());
  return e;
}

// Given two ends of one mailbox, a message posted by one should be taken
// by the other once, whole, in each direction, and nothing before.
TEST(CowMailboxTest, AMessageGoesEachWayOnce) {
  Ends e = MapBoth();
  ASSERT_TRUE(e.backend && e.process);
  std::string_view got;
  EXPECT_FALSE(e.process->Waiting());
  EXPECT_FALSE(e.process->Take(&got));
  e.backend->Post(R"({"fn":"noop","args":)", "null", "}");
  EXPECT_TRUE(e.process->Waiting());
  EXPECT_FALSE(e.backend->Waiting());  // its own message is not for it
  ASSERT_TRUE(e.process->Take(&got));
  EXPECT_EQ(got, R"({"fn":"noop","args":null})");
  EXPECT_FALSE(e.process->Take(&got));
  const std::string big(CowMailbox::kMaxMessage, 'x');
  e.process->Post(big);
  ASSERT_TRUE(e.backend->Take(&got));
  EXPECT_EQ(got, big);
}

// Given a reader that says it is looking, a writer should not ask for a
// doorbell; once it stops looking, it should.
TEST(CowMailboxTest, AWriterRingsOnlyWhenItsReaderIsNotLooking) {
  Ends e = MapBoth();
  ASSERT_TRUE(e.backend && e.process);
  std::string_view got;
  EXPECT_TRUE(e.backend->Post("a"));
  ASSERT_TRUE(e.process->Take(&got));
  e.process->Looking(true);
  EXPECT_FALSE(e.backend->Post("b"));
  ASSERT_TRUE(e.process->Take(&got));
  EXPECT_EQ(got, "b");
  e.process->Looking(false);
  EXPECT_TRUE(e.backend->Post("c"));
  // The other direction has a flag of its own.
  e.backend->Looking(true);
  EXPECT_FALSE(e.process->Post("d"));
  EXPECT_TRUE(e.backend->Post("e"));
}

// One side of the echo: waits for the next message as the fork backend
// and a cow process do (look for a while, stop looking, look once more,
// then block on the socket until a doorbell), bounded by `deadline_ms` a
// wait. False when a wait ran out: a lost wake-up.
bool Receive(CowMailbox& box, int sock, int spins, int deadline_ms, std::string* out) {
  std::string_view got;
  for (;;) {
    if (box.Take(&got)) {
      out->assign(got);
      return true;
    }
    box.Looking(true);
    for (int i = 0; i < spins && !box.Waiting(); ++i) {
    }
    box.Looking(false);
    if (box.Waiting()) continue;
    pollfd p{sock, POLLIN, 0};
    if (::poll(&p, 1, deadline_ms) != 1) return false;
    char bells[64];
    if (::read(sock, bells, sizeof bells) <= 0) return false;  // the peer is gone
  }
}

void Send(CowMailbox& box, int sock, const std::string& message) {
  if (box.Post(message)) {
    ASSERT_EQ(::write(sock, "\n", 1), 1);
  }
}

// Given a forked process that echoes through the mailbox, each side
// looking for a random while (sometimes not at all) before it blocks,
// 20,000 round trips should all come back, in order, with no side left
// waiting for a doorbell that was never rung.
TEST(CowMailboxTest, RoundTripsWithAnotherProcessLoseNoWakeUp) {
  auto fd = CowMailbox::Create();
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  // Killed and reaped on every way out of the test.
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid <= 0) return;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reaper{pid};
  if (pid == 0) {
    reaper.pid = 0;
    ::close(sv[0]);
    auto box = CowMailbox::Map(fd->get(), CowMailbox::Side::kProcess);
    if (!box.ok()) _exit(2);
    std::mt19937 rng(7);
    std::string message;
    while (Receive(**box, sv[1], static_cast<int>(rng() % 200) - 50, 10'000, &message)) {
      if ((*box)->Post(message) && ::write(sv[1], "\n", 1) != 1) _exit(3);
    }
    _exit(0);  // the test closed its end
  }
  ::close(sv[1]);
  auto box = CowMailbox::Map(fd->get(), CowMailbox::Side::kBackend);
  ASSERT_TRUE(box.ok());
  std::mt19937 rng(11);
  int lost = -1;
  for (int i = 0; i < 20'000 && lost < 0; ++i) {
    const std::string message = "request " + std::to_string(i);
    ASSERT_NO_FATAL_FAILURE(Send(**box, sv[0], message));
    std::string reply;
    if (!Receive(**box, sv[0], static_cast<int>(rng() % 200) - 50, 10'000, &reply)) {
      lost = i;
      break;
    }
    ASSERT_EQ(reply, message);
  }
  ::close(sv[0]);  // the echo sees EOF and exits
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  reaper.pid = 0;
  EXPECT_EQ(lost, -1) << "no reply to request " << lost << " within 10 s";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace drover
