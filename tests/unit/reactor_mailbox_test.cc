// backends/process/reactor_mailbox: the caller side the spawn and fork
// reactors share. A minimal reactor here (a thread waiting on the mailbox's
// epoll) stands in for theirs, so the tests see exactly what a reactor
// receives and when.
#include "backends/process/reactor_mailbox.h"

#include <sys/epoll.h>

#include <atomic>
#include <future>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>

#include "backends/backend.h"

namespace drover {
namespace {

using Kind = ReactorMailbox<TaskAttempt>::Command::Kind;

TaskAttempt Attempt(uint64_t id) {
  TaskAttempt a;
  a.attempt_id = id;
  return a;
}

// A reactor that records every command it takes and stops at kShutdown.
// `on_command` runs on the reactor thread for each command taken.
class RecordingReactor {
 public:
  explicit RecordingReactor(ReactorMailbox<TaskAttempt>& mailbox) : mailbox_(mailbox) {}

  void Run() {
    for (;;) {
      epoll_event ev{};
      const int n = ::epoll_wait(mailbox_.epoll_fd(), &ev, 1, mailbox_.more() ? 0 : 10'000);
      if (n < 0) continue;
      std::vector<ReactorMailbox<TaskAttempt>::Command>& batch = mailbox_.Take(n > 0);
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& c : batch) {
        seen_.push_back(c.kind);
        if (on_command) on_command(c);
        if (c.kind == Kind::kShutdown) return;
      }
    }
  }
  std::vector<Kind> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  std::function<void(const ReactorMailbox<TaskAttempt>::Command&)> on_command;

 private:
  ReactorMailbox<TaskAttempt>& mailbox_;
  std::mutex mu_;
  std::vector<Kind> seen_;
};

// Given a mailbox that is not started, should refuse work with a clear
// error; given slots < 1, Start should fail and say why.
TEST(ReactorMailboxTest, RefusesWorkBeforeStartAndBadSlots) {
  RealClock clock;
  ReactorMailbox<TaskAttempt> idle("spawn", 2, clock);
  EXPECT_EQ(idle.Submit(Attempt(1)).code(), StatusCode::kFailedPrecondition);
  idle.Shutdown(Duration(0));  // no thread: returns at once

  ReactorMailbox<TaskAttempt> none("fork", 0, clock);
  const Status s = none.Start([] { return Status::Ok(); }, [] {}, "t");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("fork backend: slots must be at least 1"), std::string::npos)
      << s.ToString();
}

// Given two slots, should take two attempts, refuse a third and a duplicate,
// free a slot on Release, and deliver the commands in order; Shutdown joins
// and refuses later work.
TEST(ReactorMailboxTest, SlotsDuplicatesOrderAndShutdown) {
  RealClock clock;
  ReactorMailbox<TaskAttempt> mailbox("spawn", 2, clock);
  RecordingReactor reactor(mailbox);
  ASSERT_TRUE(mailbox.Start([] { return Status::Ok(); }, [&] { reactor.Run(); }, "t").ok());
  EXPECT_EQ(mailbox.Start([] { return Status::Ok(); }, [] {}, "t").code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(mailbox.Submit(Attempt(1)).ok());
  EXPECT_EQ(mailbox.Submit(Attempt(1)).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(mailbox.Submit(Attempt(2)).ok());
  const Status full = mailbox.Submit(Attempt(3));
  EXPECT_EQ(full.code(), StatusCode::kUnavailable);
  EXPECT_NE(full.message().find("2 slots busy"), std::string::npos) << full.ToString();
  mailbox.Cancel(2);
  mailbox.Cancel(99);  // not in flight: dropped
  mailbox.Release(1);
  EXPECT_EQ(mailbox.InFlight(), std::vector<uint64_t>{2});
  ASSERT_TRUE(mailbox.Submit(Attempt(3)).ok());
  mailbox.Shutdown(Duration(0));
  EXPECT_EQ(reactor.seen(), (std::vector<Kind>{Kind::kSubmit, Kind::kSubmit, Kind::kCancel,
                                               Kind::kSubmit, Kind::kShutdown}));
  EXPECT_EQ(mailbox.Submit(Attempt(4)).code(), StatusCode::kFailedPrecondition);
  mailbox.Shutdown(Duration(0));  // idempotent
}

// Given a command queued from the reactor's own thread (an event callback),
// should set more() instead of writing the eventfd, and a Shutdown from
// there should only queue (the owner's Shutdown joins).
TEST(ReactorMailboxTest, CommandsFromTheReactorThreadNeedNoWakeUp) {
  RealClock clock;
  ReactorMailbox<TaskAttempt> mailbox("fork", 4, clock);
  RecordingReactor reactor(mailbox);
  std::promise<bool> more_after_submit;
  reactor.on_command = [&](const ReactorMailbox<TaskAttempt>::Command& c) {
    if (c.kind == Kind::kSubmit && c.attempt.attempt_id == 1) {
      EXPECT_TRUE(mailbox.on_reactor());
      EXPECT_TRUE(mailbox.Submit(Attempt(2)).ok());
      more_after_submit.set_value(mailbox.more());
      mailbox.Shutdown(Duration(0));  // queues; must not join itself
    }
  };
  ASSERT_TRUE(mailbox.Start([] { return Status::Ok(); }, [&] { reactor.Run(); }, "t").ok());
  EXPECT_FALSE(mailbox.on_reactor());
  ASSERT_TRUE(mailbox.Submit(Attempt(1)).ok());
  EXPECT_TRUE(more_after_submit.get_future().get());
  mailbox.Shutdown(Duration(0));  // joins
  EXPECT_EQ(reactor.seen(), (std::vector<Kind>{Kind::kSubmit, Kind::kSubmit, Kind::kShutdown}));
}

// Given a reactor asleep in epoll with no deadline, a jump of its FakeClock
// should wake it (an empty batch), so that it re-reads the clock; after
// Shutdown the clock no longer knows the mailbox.
TEST(ReactorMailboxTest, FakeClockJumpWakesTheReactor) {
  FakeClock clock;
  ReactorMailbox<TaskAttempt> mailbox("spawn", 1, clock);
  std::promise<void> woke;
  std::atomic<bool> told{false};
  auto run = [&] {
    for (;;) {
      epoll_event ev{};
      const int n = ::epoll_wait(mailbox.epoll_fd(), &ev, 1, -1);  // no deadline
      if (n < 0) continue;
      std::vector<ReactorMailbox<TaskAttempt>::Command>& batch = mailbox.Take(n > 0);
      if (batch.empty() && !told.exchange(true)) woke.set_value();
      for (auto& c : batch) {
        if (c.kind == Kind::kShutdown) return;
      }
    }
  };
  ASSERT_TRUE(mailbox.Start([] { return Status::Ok(); }, run, "t").ok());
  clock.Advance(std::chrono::seconds(30));
  woke.get_future().get();  // hangs (and the ctest timeout fails it) if not woken
  mailbox.Shutdown(Duration(0));
  clock.Advance(std::chrono::seconds(1));  // nobody to tell: must not touch the mailbox
}

}  // namespace
}  // namespace drover
