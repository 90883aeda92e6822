// Artifact transfer under failure, with real processes (docs/protocol.md,
// "Artifact transfer" and "Reliability"): a worker killed -9 in the middle
// of an upload, the coordinator killed -9 in the middle of one and started
// again on its state directory, and a chunk corrupted on the wire.
//
// "In the middle" is reached without timing: the test watches the store's
// temporary directory (inotify) for the file an upload writes from its
// ARTIFACT-PUT on, and freezes the process it is about to kill (SIGSTOP) as
// soon as that file appears. While either end is frozen, flow control keeps
// the upload from finishing; the test then checks that the temporary file
// is still there (the upload has not been committed) before it kills.
#include <errno.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "tests/integration/cli_test_util.h"
#include "tests/integration/corrupting_relay.h"
#include "tests/integration/distributed_test_util.h"

namespace drover::testing {
namespace {
namespace fs = std::filesystem;

constexpr Millis kJobDeadline{120'000};
// 128 MiB: even at several GB/s the upload outlasts the few milliseconds
// between the temporary file's creation and the SIGSTOP by far.
constexpr uint64_t kBigBytes = 128ull << 20;

// The first regular file created in `dir` (or already there), waited for
// with inotify until `timeout`; nothing on the deadline.
std::optional<fs::path> WaitForFileIn(const fs::path& dir, Millis timeout) {
  const int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) {
    ADD_FAILURE() << "inotify_init1: " << ::strerror(errno);
    return std::nullopt;
  }
  if (::inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
    ADD_FAILURE() << "inotify_add_watch " << dir << ": " << ::strerror(errno);
    ::close(fd);
    return std::nullopt;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<fs::path> found;
  for (;;) {
    // Listed after the watch exists, so a file made in between is seen.
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.is_regular_file(ec)) found = e.path();
    }
    if (found) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      char events[4096];
      while (::read(fd, events, sizeof events) > 0) {
      }
    }
  }
  ::close(fd);
  return found;
}

uint64_t SizeOf(const fs::path& file) {
  std::error_code ec;
  const auto n = fs::file_size(file, ec);
  return ec ? 0 : n;
}

// `make` (on host=a) writes 4 MiB of 'Z' (the relay's marker) and their
// sha256 as an output; `use` (on host=b) checks its staged copy. Each may
// run twice.
constexpr const char* kZedSpec = R"yaml(version: 1
name: corrupted-chunk
tasks:
  make:
    on: {host: a}
    retries: 1
    retry_backoff: 100ms
    run: >-
      head -c 4194304 /dev/zero | tr '\0' Z > data.bin &&
      set -- $(sha256sum data.bin) && echo "sha256=$1" >> "$DROVER_OUTPUT"
    artifacts: [data.bin]
  use:
    needs: make
    retries: 1
    retry_backoff: 100ms
    on: {host: b}
    env: {WANT: "${tasks.make.outputs.sha256}"}
    run: set -- $(sha256sum "$DROVER_INPUTS/make/data.bin") && test "$1" = "$WANT"
)yaml";

class ArtifactFailuresTest : public DistributedTest {
 protected:
  fs::path StoreTmp() const { return state_ / "artifacts" / "tmp"; }
  fs::path StoreBlobs() const { return state_ / "artifacts" / "sha256"; }

  DaemonProcess* StartLabelledWorker(const std::string& host) {
    return StartWorker(
        "w" + host, "spawn=1",
        {"--label", "host=" + host, "--spool-dir", (root_ / ("spool-" + host)).string()});
  }

  // A relay to the coordinator's port, started; nullptr on failure.
  std::unique_ptr<CorruptingRelay> StartRelay() {
    const uint16_t port =
        static_cast<uint16_t>(std::stoi(endpoint_.substr(endpoint_.rfind(':') + 1)));
    auto relay = std::make_unique<CorruptingRelay>(port, 'Z');
    if (!relay->Start()) return nullptr;
    return relay;
  }

  // StartLabelledWorker, connected through `relay`.
  DaemonProcess* StartWorkerVia(const CorruptingRelay& relay, const std::string& host) {
    return StartClient(
        {"worker", "--connect", "tcp://127.0.0.1:" + std::to_string(relay.port()),
         "--name", "w" + host, "--slots", "spawn=1", "--heartbeat", heartbeat_,
         "--liveness", std::to_string(liveness_), "--label", "host=" + host,
         "--spool-dir", (root_ / ("spool-" + host)).string()});
  }

  // Waits for the upload's temporary file in the store and freezes
  // `process` at once; then checks that the upload is still unfinished.
  // Returns the temporary file.
  fs::path FreezeMidUpload(DaemonProcess* process) {
    const std::optional<fs::path> part = WaitForFileIn(StoreTmp(), kJobDeadline);
    EXPECT_TRUE(part) << "no upload started within the deadline";
    if (!part) return {};
    EXPECT_TRUE(process->Signal(SIGSTOP));
    EXPECT_TRUE(fs::exists(*part))
        << "the upload was committed before " << process->label()
        << " could be frozen: the artifact is too small for this machine";
    EXPECT_LT(SizeOf(*part), kBigBytes);
    return *part;
  }
};

// `make` writes kBigBytes of zeros and says their sha256 as an output;
// `use` checks its staged copy against it.
std::string BigArtifactSpec(const std::string& make_extra, const std::string& use_extra) {
  return "version: 1\nname: big-artifact\ndefaults: {timeout: 5m}\ntasks:\n"
         "  make:\n" +
         make_extra +
         "    run: >-\n"
         "      head -c " +
         std::to_string(kBigBytes) +
         " /dev/zero > data.bin &&\n"
         "      set -- $(sha256sum data.bin) && echo \"sha256=$1\" >> "
         "\"$DROVER_OUTPUT\"\n"
         "    artifacts: [data.bin]\n"
         "  use:\n"
         "    needs: make\n" +
         use_extra +
         "    env: {WANT: \"${tasks.make.outputs.sha256}\"}\n"
         "    run: >-\n"
         "      set -- $(sha256sum \"$DROVER_INPUTS/make/data.bin\") && test \"$1\" = "
         "\"$WANT\"\n";
}

// Given a worker killed -9 while it uploads a 128 MiB artifact, the
// coordinator should drop the partial upload (no temporary file, no blob,
// no index row, nothing `drover artifacts` lists or gets) once the worker
// is lost, re-queue the attempt as worker-lost, and store the artifact
// whole when the retry on another worker uploads it; its dependent gets the
// same bytes.
TEST_F(ArtifactFailuresTest, WorkerKilledMidUploadLeavesNoPartialArtifact) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* wa = StartLabelledWorker("a");
  ASSERT_TRUE(wa);
  ASSERT_TRUE(WaitForWorkerState("wa", "ready", kDeadline));
  const std::string job = Submit(Spec(
      "big.yaml", BigArtifactSpec("    retries: 1\n    retry_backoff: 100ms\n", "")));
  ASSERT_FALSE(job.empty());

  ASSERT_FALSE(FreezeMidUpload(wa).empty());
  wa->Crash();
  ASSERT_TRUE(WaitForWorkerState("wa", "lost", kDeadline));
  EXPECT_EQ(FilesUnder(StoreTmp()), 0u) << "the partial upload was left in the store";
  EXPECT_EQ(FilesUnder(StoreBlobs()), 0u);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM artifacts"), 0);
  const ProcessResult list =
      Drover({"artifacts", job, "make", "--json", "--state-dir", state_.string()});
  EXPECT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_EQ(list.out.find("data.bin"), std::string::npos) << list.Describe();
  const ProcessResult get =
      Drover({"artifacts", "get", job, "make", "data.bin", "-o", "got.bin"});
  EXPECT_EQ(get.exit_code, 1) << get.Describe();
  EXPECT_NE(get.err.find("no artifact 'data.bin'"), std::string::npos) << get.err;
  EXPECT_FALSE(fs::exists(work_ / "got.bin"));

  ASSERT_TRUE(StartLabelledWorker("b"));
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kJobDeadline), "succeeded")
      << Status(job).dump(2);
  auto tasks = Tasks(job);
  EXPECT_EQ(tasks["make"]["worker"], "wb");
  EXPECT_EQ(tasks["make"]["attempts"], 2);
  ASSERT_EQ(tasks["make"]["earlier_attempts"].size(), 1u) << tasks["make"].dump(2);
  EXPECT_EQ(tasks["make"]["earlier_attempts"][0]["reason"], "worker-lost");
  EXPECT_EQ(FilesUnder(StoreBlobs()), 1u);
  EXPECT_EQ(FilesUnder(StoreTmp()), 0u);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM artifacts"), 1);
}

// Given the coordinator killed -9 while a worker uploads a 128 MiB
// artifact, a coordinator started again on the same state directory should
// remove the partial upload, and the worker, once registered again, should
// start the file over: the same attempt (no retry: `retries: 0`) stores it
// whole and succeeds, and its dependent on another worker gets the bytes.
TEST_F(ArtifactFailuresTest, CoordinatorKilledMidUploadRecoversTheAttempt) {
  ASSERT_TRUE(StartCoordinator());
  DaemonProcess* wa = StartLabelledWorker("a");
  ASSERT_TRUE(wa);
  ASSERT_TRUE(StartLabelledWorker("b"));
  ASSERT_TRUE(WaitForWorkerState("wa", "ready", kDeadline));
  ASSERT_TRUE(WaitForWorkerState("wb", "ready", kDeadline));
  const std::string job =
      Submit(Spec("big.yaml", BigArtifactSpec("    on: {host: a}\n    retries: 0\n",
                                              "    on: {host: b}\n")));
  ASSERT_FALSE(job.empty());

  const fs::path part = FreezeMidUpload(coordinator());
  ASSERT_FALSE(part.empty());
  coordinator()->Crash();
  EXPECT_TRUE(fs::exists(part)) << "a killed coordinator leaves its partial upload";
  ASSERT_TRUE(Restart(coordinator()));

  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kJobDeadline), "succeeded")
      << Status(job).dump(2);
  auto tasks = Tasks(job);
  EXPECT_EQ(tasks["make"]["attempts"], 1) << tasks["make"].dump(2);
  EXPECT_EQ(tasks["use"]["worker"], "wb");
  EXPECT_TRUE(wa->WaitForStderr("starting its transfer over", kDeadline))
      << wa->ErrTail();
  EXPECT_EQ(FilesUnder(StoreBlobs()), 1u);
  EXPECT_EQ(FilesUnder(StoreTmp()), 0u);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM artifacts"), 1);
}

// Given a worker whose connection to the coordinator flips one bit inside
// an artifact's chunk (a relay between them), the coordinator should refuse
// the upload with a sha256 mismatch, log it naming the worker, keep no blob
// and no temporary file; the attempt should fail as artifact-failed with a
// reason naming the coordinator's refusal, and the retry (bytes intact)
// should store the artifact, which its dependent gets whole.
TEST_F(ArtifactFailuresTest, CorruptedChunkIsRefusedNamingThePeer) {
  ASSERT_TRUE(StartCoordinator());
  auto relay = StartRelay();
  ASSERT_TRUE(relay);
  relay->Arm(CorruptingRelay::Direction::kToTarget);
  ASSERT_TRUE(StartWorkerVia(*relay, "a"));
  ASSERT_TRUE(StartLabelledWorker("b"));
  const std::string job = Submit(Spec("zzz.yaml", kZedSpec));
  ASSERT_FALSE(job.empty());
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kJobDeadline), "succeeded")
      << Status(job).dump(2);
  EXPECT_TRUE(relay->corrupted());

  auto tasks = Tasks(job);
  EXPECT_EQ(tasks["make"]["attempts"], 2);
  ASSERT_EQ(tasks["make"]["earlier_attempts"].size(), 1u) << tasks["make"].dump(2);
  const nlohmann::json& first = tasks["make"]["earlier_attempts"][0];
  EXPECT_EQ(first["reason"], "artifact-failed");
  const std::string detail = first["detail"];
  EXPECT_NE(detail.find("artifact 'data.bin': the coordinator says: sha256 mismatch"),
            std::string::npos)
      << detail;
  EXPECT_TRUE(coordinator()->WaitForStderr(
      "upload of 'data.bin' (attempt " + std::to_string(first["attempt"].get<int64_t>()) +
          ") from worker wa failed: sha256 mismatch",
      kDeadline))
      << coordinator()->ErrTail();
  EXPECT_EQ(FilesUnder(StoreBlobs()), 1u);
  EXPECT_EQ(FilesUnder(StoreTmp()), 0u);
  EXPECT_EQ(StoreCount(state_, "SELECT count(*) FROM artifacts"), 1);
}

// Given a worker whose connection flips one bit inside a chunk the
// coordinator sends it (staging an input), the worker should refuse the
// download (sha256 mismatch, naming the coordinator as the sender), leave
// nothing in its cache or inputs, and fail the attempt as artifact-failed;
// the retry downloads the bytes whole.
TEST_F(ArtifactFailuresTest, CorruptedDownloadChunkIsRefusedByTheWorker) {
  ASSERT_TRUE(StartCoordinator());
  auto relay = StartRelay();
  ASSERT_TRUE(relay);
  ASSERT_TRUE(StartLabelledWorker("a"));
  ASSERT_TRUE(StartWorkerVia(*relay, "b"));
  relay->Arm(CorruptingRelay::Direction::kToClient);
  const std::string job = Submit(Spec("zzz.yaml", kZedSpec));
  ASSERT_FALSE(job.empty());
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kJobDeadline), "succeeded")
      << Status(job).dump(2);
  EXPECT_TRUE(relay->corrupted());

  auto tasks = Tasks(job);
  EXPECT_EQ(tasks["make"]["attempts"], 1);
  EXPECT_EQ(tasks["use"]["attempts"], 2);
  ASSERT_EQ(tasks["use"]["earlier_attempts"].size(), 1u) << tasks["use"].dump(2);
  const nlohmann::json& first = tasks["use"]["earlier_attempts"][0];
  EXPECT_EQ(first["reason"], "artifact-failed");
  const std::string detail = first["detail"];
  EXPECT_NE(detail.find("input 'make/data.bin' from the coordinator: sha256 mismatch"),
            std::string::npos)
      << detail;
  EXPECT_EQ(FilesUnder(root_ / "spool-b" / "cache" / "tmp"), 0u);
  EXPECT_EQ(FilesUnder(root_ / "spool-b" / "cache" / "sha256"), 1u);
  EXPECT_EQ(FilesUnder(root_ / "spool-b" / "inputs"), 0u);
}

// Given short heartbeats (100 ms, dead after 500 ms of silence) and a
// 128 MiB artifact that takes longer than that to pass, neither worker
// should be declared lost during the upload or the download: both loops
// keep sending heartbeats between chunks, and a downloading worker's
// credits count as signs of life. (Seen once under heavy load before both:
// a worker staging 128 MiB was declared lost; this run does not reproduce
// that on an idle machine, it checks the promise.)
TEST_F(ArtifactFailuresTest, HeartbeatsFlowDuringALargeTransfer) {
  heartbeat_ = "100ms";
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartLabelledWorker("a"));
  ASSERT_TRUE(StartLabelledWorker("b"));
  const std::string job =
      Submit(Spec("big.yaml", BigArtifactSpec("    on: {host: a}\n    retries: 0\n",
                                              "    on: {host: b}\n    retries: 0\n")));
  ASSERT_FALSE(job.empty());
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kJobDeadline), "succeeded")
      << Status(job).dump(2);
  EXPECT_EQ(coordinator()->Err().find("missed"), std::string::npos)
      << coordinator()->ErrTail();
}

// Given an artifact whose blob in the coordinator's store was changed on
// disk after it was stored (same size, one byte flipped), a worker staging
// it should never get it: the coordinator hashes what it reads, refuses to
// send the last chunk, logs the corruption, and the attempt fails as
// artifact-failed saying so; the worker keeps nothing of it (no cached
// blob, no temporary file, no staged input). Submitting the job again
// should repair the blob (the new upload of the same content replaces it)
// and succeed.
TEST_F(ArtifactFailuresTest, CorruptedBlobInTheStoreIsNeverServed) {
  ASSERT_TRUE(StartCoordinator());
  ASSERT_TRUE(StartLabelledWorker("a"));
  const std::string spec = Spec("rot.yaml", R"yaml(version: 1
name: rotten-blob
tasks:
  make:
    on: {host: a}
    run: head -c 1048576 /dev/zero | tr '\0' Z > data.bin
    artifacts: [data.bin]
  use:
    needs: make
    on: {host: b}
    run: cat "$DROVER_INPUTS/make/data.bin" > /dev/null
)yaml");
  const std::string job = Submit(spec);
  ASSERT_FALSE(job.empty());
  // `use` waits for a worker labelled host=b, which does not exist yet.
  ASSERT_TRUE(
      PollUntil([&] { return StoreCount(state_, "SELECT count(*) FROM artifacts") == 1; },
                kJobDeadline, kClientPollInterval));
  const auto rows = QueryStore(state_, "SELECT sha256 FROM artifacts");
  ASSERT_TRUE(rows && rows->size() == 1u);
  const std::string sha = rows->front().at("sha256");
  const fs::path blob = StoreBlobs() / sha.substr(0, 2) / sha;
  ASSERT_TRUE(fs::exists(blob));
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    f.put('Y');
  }
  ASSERT_EQ(SizeOf(blob), 1048576u);

  ASSERT_TRUE(StartLabelledWorker("b"));
  ASSERT_EQ(WaitForJobState(job, {"succeeded", "failed"}, kJobDeadline), "failed")
      << Status(job).dump(2);
  auto tasks = Tasks(job);
  EXPECT_EQ(tasks["use"]["reason"], "artifact-failed");
  const std::string detail = tasks["use"]["detail"];
  EXPECT_NE(detail.find("staging inputs: input 'make/data.bin': the coordinator says: "
                        "the coordinator's copy of " +
                        sha + " is corrupt"),
            std::string::npos)
      << detail;
  EXPECT_TRUE(
      coordinator()->WaitForStderr("artifact blob " + sha + " is corrupt", kDeadline))
      << coordinator()->ErrTail();
  EXPECT_EQ(FilesUnder(root_ / "spool-b" / "cache"), 0u);
  EXPECT_EQ(FilesUnder(root_ / "spool-b" / "inputs"), 0u);

  const std::string again = Submit(spec);
  ASSERT_FALSE(again.empty());
  ASSERT_EQ(WaitForJobState(again, {"succeeded", "failed"}, kJobDeadline), "succeeded")
      << Status(again).dump(2);
  EXPECT_EQ(FilesUnder(StoreBlobs()), 1u);
  EXPECT_EQ(FilesUnder(StoreTmp()), 0u);
}

}  // namespace
}  // namespace drover::testing
