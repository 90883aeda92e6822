// A full state disk (docs/operations.md, "When the state disk is full"):
// `drover coordinator` with its --state-dir on a small tmpfs that the
// coordinator's task logs fill, and the Store's own redo of a batch whose
// commit found no room. The tmpfs is mounted in a private mount
// namespace of this test process (unshare(CLONE_NEWNS) while it is still
// single-threaded), which every process it starts inherits and which goes
// away with them; it needs root (CAP_SYS_ADMIN), and the tests skip with a
// reason without it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/store/store.h"
#include "tests/integration/distributed_test_util.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using testing::DistributedTest;
using testing::Millis;
using testing::ProcessResult;
using testing::QueryStore;

constexpr Millis kJobDeadline{60'000};

// Writes zeros to `path` until the file system has no room left (ENOSPC),
// so that the next allocation on it fails. Returns the bytes written.
uint64_t FillDisk(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << std::strerror(errno);
    return 0;
  }
  std::vector<char> zeros(1 << 20);
  uint64_t total = 0;
  for (size_t chunk = zeros.size(); chunk >= 512;) {
    const ssize_t n = ::write(fd, zeros.data(), chunk);
    if (n > 0) {
      total += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    chunk /= 2;  // ENOSPC: the last blocks take smaller writes
  }
  ::close(fd);
  return total;
}

class StateDiskTest : public DistributedTest {
 protected:
  void SetUp() override {
    DistributedTest::SetUp();
    if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: mounting a tmpfs needs root";
    // Private: the tmpfs is seen by this process and its children only.
    if (::unshare(CLONE_NEWNS) != 0) {
      GTEST_SKIP() << "SKIPPED: unshare(CLONE_NEWNS): " << std::strerror(errno);
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      GTEST_SKIP() << "SKIPPED: making / private: " << std::strerror(errno);
    }
    fs::create_directories(state_);
    if (::mount("tmpfs", state_.c_str(), "tmpfs", 0, "size=24m,mode=0700") != 0) {
      GTEST_SKIP() << "SKIPPED: mount tmpfs on " << state_ << ": "
                   << std::strerror(errno);
    }
    mounted_ = true;
  }
  void TearDown() override {
    // Stops every process, which may use the mount; the test's directory
    // cannot go while the tmpfs is mounted in it, so it goes after.
    DistributedTest::TearDown();
    if (mounted_) {
      ::umount2(state_.c_str(), MNT_DETACH);
      std::error_code ec;
      fs::remove_all(root_, ec);
    }
  }

  // A job of `tasks` tasks, each printing `bytes` bytes.
  std::string Loud(const std::string& name, int tasks, int bytes) {
    return Spec(
        name + ".yaml", "version: 1\nname: " + name +
                            "\ntasks:\n  loud:\n    matrix: {i: [" +
                            [&] {
                              std::string list;
                              for (int i = 0; i < tasks; ++i)
                                list += (i ? ", " : "") + std::to_string(i);
                              return list;
                            }() +
                            "]}\n    run: head -c " + std::to_string(bytes) +
                            " /dev/zero | tr '\\0' x\n");
  }

  // Whether the coordinator's reserve file is in place.
  bool reserve_back() const {
    std::error_code ec;
    return fs::file_size(state_ / "reserve", ec) > 0 && !ec;
  }

  bool mounted_ = false;
};

// Given a coordinator whose state disk fills up with task output during a
// job, should fail the attempts whose output it could not keep with
// "state disk full", keep serving `drover status`, keep the SQLite file
// consistent, and run a new job to completion on the same coordinator once
// space returns.
TEST_F(StateDiskTest, FullDiskFailsTasksClearlyAndRecoversWhenSpaceReturns) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=2"));
  // Leave about 6 MiB of room: 2 MiB of task output and the 4 MiB reserve.
  const fs::path filler = state_ / "filler";
  const uint64_t filled = FillDisk(filler);
  ASSERT_GT(filled, 0u);
  ASSERT_EQ(::truncate(filler.c_str(), static_cast<off_t>(filled - (6u << 20))), 0)
      << std::strerror(errno);

  // 12 tasks of 512 KiB: more than there is room for.
  const std::string job = Submit(Loud("fill", 12, 512 << 10));
  ASSERT_FALSE(job.empty());
  EXPECT_EQ(WaitForJobState(job, {"failed", "succeeded"}, kJobDeadline), "failed");

  // `drover status` answers, and names the cause of each failure.
  auto tasks = Tasks(job);
  ASSERT_EQ(tasks.size(), 12u);
  int full = 0, ok = 0;
  for (const auto& [name, t] : tasks) {
    if (t.value("status", "") == "succeeded") {
      ++ok;
      continue;
    }
    EXPECT_NE(t.value("detail", "").find("state disk full"), std::string::npos)
        << t.dump();
    ++full;
  }
  EXPECT_GT(full, 0);
  const ProcessResult table = Drover({"status", job});
  EXPECT_NE(table.out.find("state disk full"), std::string::npos) << table.Describe();

  // The store is consistent.
  auto check = QueryStore(state_, "PRAGMA integrity_check");
  ASSERT_TRUE(check && check->size() == 1) << "integrity_check gave no answer";
  EXPECT_EQ(check->front().begin()->second, "ok");

  // Space returns: the same coordinator keeps output again and a job of
  // the same kind succeeds.
  ASSERT_TRUE(fs::remove(filler));
  ASSERT_TRUE(
      testing::PollUntil([&] { return reserve_back(); }, kJobDeadline, Millis(50)))
      << "the coordinator did not take its reserve back";
  const std::string again = Submit(Loud("again", 2, 512 << 10));
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(WaitForJobState(again, {"failed", "succeeded"}, kJobDeadline), "succeeded");
  const ProcessResult logs = Drover({"logs", again, "loud[i=0]"});
  EXPECT_EQ(logs.out.size(), 512u << 10) << logs.err;
}

// Given a state disk with no room left at all (the reserve used too),
// should hold the turn that cannot commit instead of losing or
// half-recording it, answer client requests with an ERROR naming the full
// disk instead of hanging, and, once space returns, commit the held turn
// and run new jobs, without a restart.
TEST_F(StateDiskTest, NoRoomAtAllHoldsTheTurnAndAnswersClientsWithAnError) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartWorker("w1", "spawn=2"));
  Spec("small.yaml", "version: 1\nname: small\ntasks:\n  hi: {run: echo hi}\n");
  const std::string small = Submit("small.yaml");  // the store has a job and a WAL
  ASSERT_FALSE(small.empty());
  // Ended, so that no commit of it takes the reserve before the test does.
  ASSERT_EQ(WaitForJobState(small, {"failed", "succeeded"}, kJobDeadline), "succeeded");

  // Fill the disk; the first commit that finds no room gets the reserve,
  // and the test takes that room too.
  const fs::path filler = state_ / "filler";
  ASSERT_GT(FillDisk(filler), 0u);
  ASSERT_TRUE(fs::exists(state_ / "reserve"));
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        (void)Drover({"submit", "small.yaml"});
        return !fs::exists(state_ / "reserve");
      },
      kJobDeadline, Millis(50)))
      << "no commit needed the reserve";
  const fs::path filler2 = state_ / "filler2";
  FillDisk(filler2);

  // A submission now cannot be committed: the turn that holds it is held
  // (its client waits), or, when an earlier turn is held already, it is
  // refused at once with the cause.
  testing::DaemonProcess* held = StartClient({"submit", "small.yaml", "--wait"});
  ASSERT_TRUE(held);
  // Other requests get an ERROR that names the cause.
  std::string refusal;
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        const ProcessResult r = Drover({"status"});
        refusal = r.err;
        return r.exit_code != 0 && r.err.find("state disk full") != std::string::npos;
      },
      kJobDeadline, testing::kClientPollInterval))
      << "status was not refused with the cause: " << refusal;

  auto check = QueryStore(state_, "PRAGMA integrity_check");
  ASSERT_TRUE(check && check->size() == 1);
  EXPECT_EQ(check->front().begin()->second, "ok");

  // Space returns: the held turn commits, the held submission (if it was
  // one) is answered and runs, and new work runs on the same coordinator.
  // The big filler first: space returns at once. Removing the small one
  // first lets the held turn commit in the room it frees, and a task that
  // then ends before the big one goes finds too little room to take its
  // reserve back (its output is then not kept, and it fails: right, but
  // not what this test is about).
  ASSERT_TRUE(fs::remove(filler));
  ASSERT_TRUE(fs::remove(filler2));
  const ProcessResult first = held->Wait(kJobDeadline);
  // Three outcomes are right: it was held and then ran; it was refused with
  // the cause; or the turn stayed held past the client's own 10 s request
  // timeout, and the client gave up saying so (the submission is not lost:
  // it commits with the held turn).
  if (first.exit_code == 0) {
    EXPECT_NE(first.err.find("succeeded"), std::string::npos) << first.Describe();
  } else {
    EXPECT_TRUE(first.err.find("state disk full") != std::string::npos ||
                first.err.find("no answer from the coordinator") != std::string::npos)
        << first.Describe();
  }
  ASSERT_TRUE(testing::PollUntil([&] { return Drover({"status"}).exit_code == 0; },
                                 kJobDeadline, testing::kClientPollInterval));
  const ProcessResult again = Drover({"submit", "small.yaml", "--wait"});
  EXPECT_EQ(again.exit_code, 0) << again.Describe();
  EXPECT_NE(again.err.find("succeeded"), std::string::npos) << again.Describe();
}

// A running job of `tasks` tasks, none with a row, for the tests that
// write to the store directly.
store::JobRecord RunningJob(const std::string& id, const std::string& name,
                            uint32_t tasks) {
  store::JobRecord job;
  job.id = id;
  job.name = name;
  job.spec_text = "version: 1\n";
  job.state = "running";
  job.tasks = tasks;
  return job;
}

// Given a batch of a task's three writes for many tasks (the attempt's
// row, its outcome, the task's row: the hot writes, journaled in reused
// slots) whose commit finds the disk full, should hold it, and redo each
// write with its own record once there is room: every row as written,
// none lost, none twice; and a second such batch reuses the slots (more of
// them than the Store keeps past a batch, so the kept ones are cut back in
// between).
TEST_F(StateDiskTest, AHeldBatchIsRedoneWriteForWrite) {
  auto opened = store::Store::Open(state_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  store::Store& db = **opened;
  constexpr uint32_t kTasks = 1100;
  const store::JobRecord job = RunningJob("20261204-000000-held", "held", 2 * kTasks);
  ASSERT_TRUE(db.InsertJob(job, {}).ok());

  const std::string padding(600, 'p');  // rows big enough to need new pages
  auto write = [&](uint32_t first) {
    for (uint32_t i = first; i < first + kTasks; ++i) {
      const std::string name = "t" + std::to_string(i);
      store::AttemptRecord a;
      a.id = 1000 + i;
      a.job_id = job.id;
      a.task = name;
      a.number = 1;
      a.worker = "w" + std::to_string(i % 7);
      a.started_ms = 1'000 + i;
      a.task_index = i;
      ASSERT_TRUE(db.InsertAttempt(a).ok());
      AttemptOutcome o;
      o.reason = FailureReason::kExit;
      o.exit_code = static_cast<int>(i % 200) + 1;
      o.message = padding + name;
      const Result<bool> finished = db.FinishAttempt(a.id, a.worker, o, 2'000 + i);
      ASSERT_TRUE(finished.ok());
      store::TaskRecord row;
      row.job_id = job.id;
      row.index = i;
      row.name = name;
      row.state = "failed";
      row.attempts = 1;
      row.reason = "exit";
      row.exit_code = o.exit_code;
      row.detail = padding + name;
      row.worker = a.worker;
      row.started_ms = a.started_ms;
      row.finished_ms = 2'000 + i;
      ASSERT_TRUE(db.UpdateTask(row).ok());
    }
  };
  auto check = [&](uint32_t count) {
    const Result<std::vector<store::TaskRecord>> rows = db.Tasks(job.id);
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), count);
    for (uint32_t i = 0; i < count; ++i) {
      const store::TaskRecord& row = (*rows)[i];
      const std::string name = "t" + std::to_string(i);
      EXPECT_EQ(row.name, name);
      EXPECT_EQ(row.index, i);
      EXPECT_EQ(row.state, "failed") << name;
      EXPECT_EQ(row.exit_code, static_cast<int>(i % 200) + 1) << name;
      EXPECT_EQ(row.detail, padding + name);
      EXPECT_EQ(row.worker, "w" + std::to_string(i % 7)) << name;
      const Result<std::vector<store::AttemptRecord>> attempts =
          db.Attempts(job.id, name);
      ASSERT_TRUE(attempts.ok());
      ASSERT_EQ(attempts->size(), 1u) << name;
      EXPECT_EQ((*attempts)[0].id, 1000 + i);
      EXPECT_TRUE((*attempts)[0].finished) << name;
      EXPECT_EQ((*attempts)[0].outcome.exit_code, static_cast<int>(i % 200) + 1) << name;
      EXPECT_EQ((*attempts)[0].outcome.message, padding + name);
    }
  };

  for (uint32_t first : {0u, kTasks}) {
    const fs::path filler = state_ / "filler";
    ASSERT_GT(FillDisk(filler), 0u);
    ASSERT_TRUE(db.Begin().ok());
    write(first);
    const drover::Status committed = db.Commit();
    ASSERT_FALSE(committed.ok()) << "the batch found room on a full disk";
    EXPECT_NE(committed.message().find("state disk full"), std::string::npos)
        << committed.ToString();
    ASSERT_TRUE(db.Pending());
    ASSERT_TRUE(fs::remove(filler));
    ASSERT_TRUE(db.Begin().ok());  // redoes the held batch
    const drover::Status redone = db.Commit();
    ASSERT_TRUE(redone.ok()) << redone.ToString();
    EXPECT_FALSE(db.Pending());
    check(first + kTasks);
  }
}

// Given attempts dispatched by one batch, and a second batch that ends
// them (their rows made whole, the first batch's row of the dispatch log
// deleted) and dispatches more (a new log row), when the second batch's
// commit finds the disk full, the held batch should be redone whole once
// there is room: the ended attempts with their rows, the new ones running,
// and the log holding exactly the new row, read back the same by a store
// opened afresh.
TEST_F(StateDiskTest, AHeldBatchRedoesItsDispatchLog) {
  auto opened = store::Store::Open(state_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<store::Store> db = std::move(*opened);
  constexpr uint32_t kTasks = 400;
  const store::JobRecord job = RunningJob("20261206-000000-log", "logged", 2 * kTasks);
  ASSERT_TRUE(db->InsertJob(job, {}).ok());
  auto attempt = [&](uint32_t i) {
    store::AttemptRecord a;
    a.id = 1 + i;
    a.job_id = job.id;
    a.task = "t" + std::to_string(i);
    a.number = 1;
    a.worker = "w" + std::to_string(i % 3);
    a.started_ms = 1'000 + i;
    a.task_index = i;
    return a;
  };
  ASSERT_TRUE(db->Begin().ok());
  for (uint32_t i = 0; i < kTasks; ++i) ASSERT_TRUE(db->InsertAttempt(attempt(i)).ok());
  ASSERT_TRUE(db->Commit().ok());

  const std::string padding(600, 'p');  // rows big enough to need new pages
  const fs::path filler = state_ / "filler";
  ASSERT_GT(FillDisk(filler), 0u);
  ASSERT_TRUE(db->Begin().ok());
  for (uint32_t i = 0; i < kTasks; ++i) {
    AttemptOutcome o;
    o.reason = FailureReason::kExit;
    o.exit_code = 3;
    o.message = padding + std::to_string(i);
    const Result<bool> ended = db->FinishAttempt(1 + i, "", o, 2'000 + i);
    ASSERT_TRUE(ended.ok() && *ended) << i;
    ASSERT_TRUE(db->InsertAttempt(attempt(kTasks + i)).ok());
  }
  const drover::Status committed = db->Commit();
  ASSERT_FALSE(committed.ok()) << "the batch found room on a full disk";
  ASSERT_TRUE(db->Pending());
  ASSERT_TRUE(fs::remove(filler));
  ASSERT_TRUE(db->Begin().ok());  // redoes the held batch
  const drover::Status redone = db->Commit();
  ASSERT_TRUE(redone.ok()) << redone.ToString();

  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass == 0 ? "the store that held the batch" : "a store opened afresh");
    const Result<std::vector<store::AttemptRecord>> running = db->UnfinishedAttempts();
    ASSERT_TRUE(running.ok()) << running.status().ToString();
    ASSERT_EQ(running->size(), kTasks);
    for (uint32_t i = 0; i < kTasks; ++i) {
      EXPECT_EQ((*running)[i].id, 1 + kTasks + i);
      EXPECT_EQ((*running)[i].worker, "w" + std::to_string((kTasks + i) % 3));
    }
    const Result<std::vector<store::AttemptRecord>> ended = db->Attempts(job.id, "t7");
    ASSERT_TRUE(ended.ok());
    ASSERT_EQ(ended->size(), 1u);
    EXPECT_TRUE((*ended)[0].finished);
    EXPECT_EQ((*ended)[0].worker, "w1");  // the dispatch's: the end named none
    EXPECT_EQ((*ended)[0].outcome.message, padding + "7");
    EXPECT_EQ(testing::StoreCount(state_, "SELECT count(*) FROM dispatches"), 1);
    EXPECT_EQ(testing::StoreCount(state_, "SELECT min(id) FROM dispatches"), 1 + kTasks);
    db.reset();
    opened = store::Store::Open(state_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    db = std::move(*opened);
  }
  // Their ends empty the log.
  ASSERT_TRUE(db->Begin().ok());
  for (uint32_t i = 0; i < kTasks; ++i) {
    AttemptOutcome ok;
    ASSERT_TRUE(*db->FinishAttempt(1 + kTasks + i, "", ok, 3'000));
  }
  ASSERT_TRUE(db->Commit().ok());
  EXPECT_EQ(testing::StoreCount(state_, "SELECT count(*) FROM dispatches"), 0);
  EXPECT_EQ(testing::StoreCount(state_, "SELECT count(*) FROM attempts"), 2 * kTasks);
}

}  // namespace
}  // namespace drover
