// Artifacts end to end with real processes (docs/spec.md, "artifacts"): a
// `drover coordinator` and two `drover worker`s over TCP loopback, each
// worker with its own spool directory (its cache, its attempts' working
// directories), so that nothing but the protocol carries a file from a task
// on one to a task on the other.
#include <fstream>
#include <sstream>

#include "tests/integration/distributed_test_util.h"

namespace drover::testing {
namespace {
namespace fs = std::filesystem;

// A field of /proc/PID/status in kB ("VmRSS", "VmHWM"); -1 when unreadable.
int64_t ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream fields(line.substr(field.size() + 1));
      int64_t kb = -1;
      fields >> kb;
      return kb;
    }
  }
  return -1;
}

class ArtifactsTest : public DistributedTest {
 protected:
  // Two workers, labelled host=a and host=b, with separate spools.
  void StartTwoWorkers() {
    ASSERT_NE(StartCoordinator(), nullptr);
    for (const std::string host : {"a", "b"}) {
      ASSERT_NE(StartWorker("w" + host, "spawn=2",
                            {"--label", "host=" + host, "--spool-dir",
                             (root_ / ("spool-" + host)).string()}),
                nullptr);
    }
    ASSERT_TRUE(WaitForWorkerState("wa", "ready", kDeadline * 4));
    ASSERT_TRUE(WaitForWorkerState("wb", "ready", kDeadline * 4));
  }
};

// Given a task on worker a that declares a 200 MB file, a small file, a
// copy of it and a checksum list as artifacts, and a task on worker b that
// needs it, should stage every file under $DROVER_INPUTS/make/PATH on b
// with the same bytes, run b's task in a directory of its own, store each
// distinct content once, keep the coordinator's RSS within 64 MB of where
// it started, and leave no temporary file in the store.
TEST_F(ArtifactsTest, PassesA200MBArtifactBetweenWorkersWithBoundedCoordinatorMemory) {
  ASSERT_NO_FATAL_FAILURE(StartTwoWorkers());
  const pid_t coordinator_pid = coordinator()->pid();
  const int64_t rss_start_kb = ProcStatusKb(coordinator_pid, "VmRSS");
  ASSERT_GT(rss_start_kb, 0);

  const std::string spec = Spec("pipe.yaml", R"yaml(version: 1
name: pipe
defaults: {timeout: 5m}
tasks:
  make:
    on: {host: a}
    run: >-
      mkdir -p out && printf 'hello artifact' > out/greeting.txt &&
      cp out/greeting.txt out/copy.txt &&
      head -c 209715200 /dev/urandom > big.bin && chmod 755 big.bin &&
      sha256sum big.bin out/greeting.txt > sums.txt && pwd > where.txt
    artifacts: [out, "*.bin", sums.txt, where.txt]
  use:
    needs: [make]
    on: {host: b}
    run: >-
      w=$(pwd) && cd "$DROVER_INPUTS/make" && sha256sum -c sums.txt &&
      test "$(cat out/copy.txt)" = 'hello artifact' && test -x big.bin &&
      test "$w" != "$(cat where.txt)" && ! test -e "$w/big.bin"
)yaml");
  const std::string job = Submit(spec);
  ASSERT_FALSE(job.empty());
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, std::chrono::minutes(4)),
            "succeeded")
      << Status(job).dump(2);

  // Five files, four contents (copy.txt is greeting.txt's bytes).
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM artifacts WHERE task = 'make'"), 5);
  EXPECT_EQ(FilesUnder(state_ / "artifacts" / "sha256"), 4u);
  EXPECT_EQ(FilesUnder(state_ / "artifacts" / "tmp"), 0u);

  const int64_t hwm_kb = ProcStatusKb(coordinator_pid, "VmHWM");
  EXPECT_LT(hwm_kb - rss_start_kb, 64 * 1024)
      << "coordinator RSS at start " << rss_start_kb << " kB, peak " << hwm_kb << " kB";

  // The attempts' own directories are gone; the caches hold the contents.
  EXPECT_EQ(FilesUnder(root_ / "spool-b" / "inputs"), 0u);
  EXPECT_EQ(FilesUnder(root_ / "spool-b" / "work"), 0u);
  EXPECT_EQ(FilesUnder(root_ / "spool-b" / "cache" / "sha256"), 4u);
}

// Given a job whose task stored an artifact, `drover artifacts` should
// list it, `drover artifacts get` through the coordinator should write its
// bytes to -o FILE, and `drover gc --keep-last 0` should remove the blobs
// once nothing refers to them.
TEST_F(ArtifactsTest, ListGetAndGc) {
  ASSERT_NO_FATAL_FAILURE(StartTwoWorkers());
  const std::string spec = Spec("one.yaml", R"yaml(version: 1
name: one
tasks:
  make: {run: "printf 'some bytes' > result.txt", artifacts: result.txt}
)yaml");
  const std::string job = Submit(spec);
  ASSERT_FALSE(job.empty());
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kDeadline * 6), "succeeded");

  ProcessResult list = Drover({"artifacts", job, "--state-dir", state_.string()});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_NE(list.out.find("result.txt"), std::string::npos) << list.out;

  ProcessResult get =
      Drover({"artifacts", "get", job, "make", "result.txt", "-o", "got.txt"});
  ASSERT_EQ(get.exit_code, 0) << get.Describe();
  std::ifstream in(work_ / "got.txt");
  std::string got((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(got, "some bytes");

  ProcessResult missing =
      Drover({"artifacts", "get", job, "make", "nope.txt", "-o", "x.txt"});
  EXPECT_EQ(missing.exit_code, 1) << missing.Describe();
  EXPECT_NE(missing.err.find("no artifact 'nope.txt'"), std::string::npos) << missing.err;
  EXPECT_FALSE(fs::exists(work_ / "x.txt"));

  ASSERT_EQ(FilesUnder(state_ / "artifacts" / "sha256"), 1u);
  ProcessResult gc = Drover(
      {"gc", "--keep-last", "0", "--min-age", "0s", "--state-dir", state_.string()});
  ASSERT_EQ(gc.exit_code, 0) << gc.Describe();
  EXPECT_EQ(FilesUnder(state_ / "artifacts" / "sha256"), 0u) << gc.out;
}

}  // namespace
}  // namespace drover::testing
