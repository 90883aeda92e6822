// Artifacts end to end with real processes (docs/spec.md, "artifacts"): a
// `drover coordinator` and two `drover worker`s over TCP loopback, each
// worker with its own spool directory (its cache, its attempts' working
// directories), so that nothing but the protocol carries a file from a task
// on one to a task on the other; and `drover run`, where they are linked.
#include <sys/stat.h>

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
  ShrinkAsanQuarantine();
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

// Given `drover run` (coordinator and worker in one process, on one disk)
// and tasks whose 8 MiB artifacts a dependent needs (one made in the
// attempt's own directory, one in a `cwd` of the task's), should store and
// stage them without copying a byte: each producer's file, the store's blob
// and the dependent's staged input are one inode (hard links), whose bytes
// the dependent checks against the producer's sha256; the store keeps no
// temporary file.
TEST_F(ArtifactsTest, DroverRunLinksArtifactsInsteadOfCopyingThem) {
  const std::string spec = Spec("local.yaml", R"yaml(version: 1
name: local
tasks:
  make:
    run: >-
      head -c 8388608 /dev/urandom > data.bin &&
      set -- $(sha256sum data.bin) && echo "sha256=$1" >> "$DROVER_OUTPUT" &&
      echo "inode=$(stat -c %i data.bin)" >> "$DROVER_OUTPUT"
    artifacts: [data.bin]
  make_in_dir:
    cwd: outdir
    run: >-
      head -c 8388608 /dev/urandom > data.bin &&
      set -- $(sha256sum data.bin) && echo "sha256=$1" >> "$DROVER_OUTPUT" &&
      echo "inode=$(stat -c %i data.bin)" >> "$DROVER_OUTPUT"
    artifacts: [data.bin]
  use:
    needs: [make, make_in_dir]
    env: {WANT: "${tasks.make.outputs.sha256}", WANT2: "${tasks.make_in_dir.outputs.sha256}"}
    run: >-
      f="$DROVER_INPUTS/make/data.bin" && set -- $(sha256sum "$f") &&
      test "$1" = "$WANT" && echo "inode=$(stat -c %i "$f")" >> "$DROVER_OUTPUT" &&
      f="$DROVER_INPUTS/make_in_dir/data.bin" && set -- $(sha256sum "$f") &&
      test "$1" = "$WANT2" && echo "inode2=$(stat -c %i "$f")" >> "$DROVER_OUTPUT"
)yaml");
  fs::create_directories(work_ / "outdir");
  const ProcessResult run = Drover({"run", spec, "--no-progress"}, kDeadline * 2);
  ASSERT_EQ(run.exit_code, 0) << run.Describe();
  const ProcessResult status = Drover({"status", "--output", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.Describe();
  auto tasks = TasksByName(nlohmann::json::parse(status.out, nullptr, false));
  const std::string sha = tasks["make"]["outputs"].value("sha256", "");
  const std::string made = tasks["make"]["outputs"].value("inode", "");
  ASSERT_EQ(sha.size(), 64u) << status.out;
  EXPECT_EQ(tasks["use"]["outputs"].value("inode", ""), made) << status.out;

  const fs::path store = work_ / ".drover" / "artifacts";
  struct stat st {};
  ASSERT_EQ(::stat((store / "sha256" / sha.substr(0, 2) / sha).c_str(), &st), 0);
  EXPECT_EQ(std::to_string(st.st_ino), made);
  // Made outside the attempt's directory, so not in the worker's cache
  // after its upload: staged from the store.
  const std::string sha2 = tasks["make_in_dir"]["outputs"].value("sha256", "");
  const std::string made2 = tasks["make_in_dir"]["outputs"].value("inode", "");
  ASSERT_EQ(sha2.size(), 64u) << status.out;
  EXPECT_EQ(tasks["use"]["outputs"].value("inode2", ""), made2) << status.out;
  ASSERT_EQ(::stat((store / "sha256" / sha2.substr(0, 2) / sha2).c_str(), &st), 0);
  EXPECT_EQ(std::to_string(st.st_ino), made2);
  EXPECT_EQ(FilesUnder(store / "sha256"), 2u);
  EXPECT_EQ(FilesUnder(store / "tmp"), 0u);
}

}  // namespace
}  // namespace drover::testing
