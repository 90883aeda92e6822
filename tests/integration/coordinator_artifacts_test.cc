// The coordinator's side of artifact upload (docs/protocol.md, "Artifact
// transfer"), against a scripted fake worker: credit, integrity, the index,
// and what a DISPATCH of a dependent lists.
#include "core/artifacts/sha256.h"
#include "core/artifacts/transfer.h"
#include "tests/integration/coordinator_fixture.h"

namespace drover::testing {
namespace {

size_t FilesUnder(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) ++n;
  }
  return n;
}

wire::ArtifactPut Put(uint64_t transfer, uint64_t attempt, const std::string& path,
                      uint64_t size) {
  wire::ArtifactPut put;
  put.set_transfer_id(transfer);
  put.set_attempt_id(attempt);
  put.set_path(path);
  put.set_size(size);
  put.set_mode(0644);
  return put;
}

wire::ArtifactChunk LastChunk(uint64_t transfer, uint64_t offset, uint64_t size,
                              const std::string& sha) {
  wire::ArtifactChunk chunk;
  chunk.set_transfer_id(transfer);
  chunk.set_offset(offset);
  chunk.set_size(size);
  chunk.set_last(true);
  chunk.set_sha256(sha);
  return chunk;
}

// Given a worker uploading an artifact whose only chunk was corrupted on
// the way (its bytes do not hash to the announced sha256), should answer
// ARTIFACT-DONE with the mismatch and keep no blob and no temporary file;
// a correct upload after it should be stored, indexed, and listed in the
// DISPATCH of the task that needs it.
TEST_F(CoordinatorTest, CorruptedChunkIsRefusedAndTheRetryIsStored) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  FakeWorker& w = AddWorker("w1", 2);
  FakeClient& c = AddClient();
  ASSERT_TRUE(
      c.Submit("version: 1\nname: art\ntasks:\n"
               "  make: {run: 'true', artifacts: [out.bin]}\n"
               "  use: {run: 'true', needs: [make]}\n"));
  auto d = w.ExpectDispatch();
  ASSERT_TRUE(d);
  ASSERT_EQ(d->artifacts_size(), 1);
  EXPECT_EQ(d->artifacts(0), "out.bin");
  EXPECT_EQ(d->artifacts_dir(), "");

  const std::string good = "0123456789";
  const std::string sha = artifacts::Sha256Hex(good);
  w.Send(Command::kArtifactPut, Put(7, d->attempt_id(), "out.bin", good.size()));
  auto credit = w.Expect(Command::kArtifactCredit);
  ASSERT_TRUE(credit);
  EXPECT_EQ(Body<wire::ArtifactCredit>(*credit).chunks(), artifacts::kWindow);
  w.Send(Command::kArtifactChunk, LastChunk(7, 0, good.size(), sha), {"0123456X89"});
  auto done = w.Expect(Command::kArtifactDone);
  ASSERT_TRUE(done);
  EXPECT_NE(Body<wire::ArtifactDone>(*done).error().find("sha256 mismatch"),
            std::string::npos)
      << Body<wire::ArtifactDone>(*done).error();
  EXPECT_EQ(FilesUnder(state_dir_ / "artifacts" / "sha256"), 0u);
  EXPECT_EQ(FilesUnder(state_dir_ / "artifacts" / "tmp"), 0u);

  // A path that leaves the working directory is refused before any byte.
  w.Send(Command::kArtifactPut, Put(8, d->attempt_id(), "../etc/passwd", 1));
  done = w.Expect(Command::kArtifactDone);
  ASSERT_TRUE(done);
  EXPECT_NE(Body<wire::ArtifactDone>(*done).error().find(".."), std::string::npos);

  w.Send(Command::kArtifactPut, Put(9, d->attempt_id(), "out.bin", good.size()));
  ASSERT_TRUE(w.Expect(Command::kArtifactCredit));
  w.Send(Command::kArtifactChunk, LastChunk(9, 0, good.size(), sha), {good});
  done = w.Expect(Command::kArtifactDone);
  ASSERT_TRUE(done);
  EXPECT_EQ(Body<wire::ArtifactDone>(*done).error(), "");
  EXPECT_EQ(Body<wire::ArtifactDone>(*done).sha256(), sha);
  EXPECT_EQ(FilesUnder(state_dir_ / "artifacts" / "sha256"), 1u);

  w.SendResult(d->attempt_id(), Ok());
  auto ack = w.ExpectAck();  // committed first, then the dependent goes out
  ASSERT_TRUE(ack);
  auto use = w.ExpectDispatch();
  ASSERT_TRUE(use);
  EXPECT_EQ(use->task(), "use");
  ASSERT_EQ(use->inputs_size(), 1);
  EXPECT_EQ(use->inputs(0).task(), "make");
  EXPECT_EQ(use->inputs(0).path(), "out.bin");
  EXPECT_EQ(use->inputs(0).sha256(), sha);
  EXPECT_EQ(use->inputs(0).size(), good.size());

  // The dependent's worker downloads it by sha256, with credit.
  wire::ArtifactGet get;
  get.set_transfer_id(1);
  get.set_sha256(sha);
  get.set_credit(1);
  w.Send(Command::kArtifactGet, get);
  auto chunk = w.Expect(Command::kArtifactChunk);
  ASSERT_TRUE(chunk);
  EXPECT_TRUE(Body<wire::ArtifactChunk>(*chunk).last());
  EXPECT_EQ(Body<wire::ArtifactChunk>(*chunk).sha256(), sha);
  ASSERT_EQ(chunk->payloads.size(), 1u);
  EXPECT_EQ(chunk->payloads[0], good);
}

}  // namespace
}  // namespace drover::testing
