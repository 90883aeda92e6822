// BlobStore's linked writers (core/artifacts/blob_store.h), which `drover
// run` uses to store a task's file without copying it, and what lets a
// verified blob be sent without hashing it again (its file's stamp, and
// ChunkSource reading without a hash): on a real temporary directory, no
// process, no socket.
#include "core/artifacts/blob_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/artifacts/sha256.h"
#include "core/artifacts/transfer.h"

namespace drover::artifacts {
namespace {
namespace fs = std::filesystem;

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "drover-blob.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto store = BlobStore::Open(dir_ / "store");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store.value());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
    return dir_ / name;
  }
  static ino_t Inode(const fs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
  }
  size_t TempFiles() const {
    return static_cast<size_t>(std::distance(
        fs::directory_iterator(dir_ / "store" / "tmp"), fs::directory_iterator()));
  }
  // Stores `bytes` as an uploaded blob is stored; returns its path.
  fs::path Store(const std::string& bytes) {
    auto w = store_->Begin();
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    if (!w.ok()) return {};
    EXPECT_TRUE((*w)->Append(bytes).ok());
    auto blob = (*w)->Commit(Sha256Hex(bytes), bytes.size());
    EXPECT_TRUE(blob.ok()) << blob.status().ToString();
    return blob.ok() ? *blob : fs::path();
  }
  static FileStamp StampOf(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return FileStamp::Of(st);
  }
  // Hashes a linked writer to its end.
  static void HashAll(BlobWriter& w) {
    for (;;) {
      auto n = w.HashNext(4);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      if (*n == 0) return;
    }
  }

  fs::path dir_;
  std::unique_ptr<BlobStore> store_;
};

// Given a file on the store's file system, a linked writer hashed to its
// end and committed without a name should make the blob named by the
// file's sha256, the same inode as the file (no byte copied), and leave no
// temporary file.
TEST_F(BlobStoreTest, LinkedWriterStoresTheFileItselfUnderItsHash) {
  const std::string bytes = "linked, not copied";
  const fs::path file = Write("task.out", bytes);
  auto w = store_->BeginLinked(file, bytes.size());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_NO_FATAL_FAILURE(HashAll(**w));
  auto blob = (*w)->Commit("", bytes.size());
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_EQ(*blob, store_->Path(Sha256Hex(bytes)));
  EXPECT_EQ(Inode(*blob), Inode(file));
  EXPECT_EQ(TempFiles(), 0u);
}

// Given a file whose size is not the one announced (it changed after the
// worker opened it), BeginLinked should refuse it and keep no link.
TEST_F(BlobStoreTest, LinkedWriterRefusesAnotherSize) {
  const fs::path file = Write("task.out", "12345");
  auto w = store_->BeginLinked(file, 4);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(w.status().message().find("holds 5 bytes, not the 4 announced"),
            std::string::npos)
      << w.status().message();
  EXPECT_EQ(TempFiles(), 0u);
}

// Given content the store holds already, committing a linked writer of the
// same bytes should leave one blob of that name, now the verified file just
// linked (which repairs a blob the disk damaged), and no temporary file.
TEST_F(BlobStoreTest, LinkedWriterOfStoredContentReplacesTheBlob) {
  const std::string bytes = "same bytes";
  auto first = store_->Begin();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)->Append(bytes).ok());
  auto stored = (*first)->Commit(Sha256Hex(bytes), bytes.size());
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();

  const fs::path file = Write("again.out", bytes);
  auto w = store_->BeginLinked(file, bytes.size());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_NO_FATAL_FAILURE(HashAll(**w));
  EXPECT_EQ((*w)->Digest(), Sha256Hex(bytes));
  auto blob = (*w)->Commit("", bytes.size());
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_EQ(*blob, *stored);
  EXPECT_EQ(Inode(*blob), Inode(file));
  EXPECT_EQ(TempFiles(), 0u);
}

// Given a file that grew after it was linked, Commit should refuse it
// (size mismatch) and remove the link: what is stored is what was hashed.
TEST_F(BlobStoreTest, LinkedFileThatGrewIsRefused) {
  const fs::path file = Write("task.out", "abc");
  auto w = store_->BeginLinked(file, 3);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::ofstream(file, std::ios::app) << "def";
  ASSERT_NO_FATAL_FAILURE(HashAll(**w));
  auto blob = (*w)->Commit("", 3);
  ASSERT_FALSE(blob.ok());
  EXPECT_NE(blob.status().message().find("size mismatch"), std::string::npos)
      << blob.status().message();
  EXPECT_EQ(TempFiles(), 0u);
}

// Given a stored blob noted as verified, the store should vouch for it
// while its file keeps the stamp it had, and only then: not for another
// size, inode or change time, not for a blob never noted, and not after a
// restart (a new BlobStore on the same root remembers nothing).
TEST_F(BlobStoreTest, AVerifiedBlobIsVouchedForOnlyWithTheStampItHad) {
  const std::string bytes = "checked once";
  const std::string sha = Sha256Hex(bytes);
  const fs::path blob = Store(bytes);
  ASSERT_FALSE(blob.empty());
  const FileStamp stamp = StampOf(blob);
  EXPECT_FALSE(store_->Verified(sha, stamp));
  ASSERT_TRUE(store_->NoteVerified(sha));
  EXPECT_TRUE(store_->Verified(sha, stamp));
  EXPECT_FALSE(store_->Verified(Sha256Hex("other"), stamp));
  FileStamp longer = stamp, replaced = stamp, changed = stamp;
  longer.size += 1;
  replaced.ino += 1;
  changed.ctime_nsec += 1;
  EXPECT_FALSE(store_->Verified(sha, longer));
  EXPECT_FALSE(store_->Verified(sha, replaced));
  EXPECT_FALSE(store_->Verified(sha, changed));
  auto again = BlobStore::Open(dir_ / "store");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE((*again)->Verified(sha, stamp));
  EXPECT_FALSE(store_->NoteVerified(Sha256Hex("never stored")));
}

// Given a verified blob whose file is then replaced (a new inode) or cut
// short on disk, the stamp read back should no longer be vouched for.
TEST_F(BlobStoreTest, AReplacedOrTruncatedBlobIsNoLongerVouchedFor) {
  const std::string bytes = "replace me, then truncate me";
  const std::string sha = Sha256Hex(bytes);
  const fs::path blob = Store(bytes);
  ASSERT_FALSE(blob.empty());
  ASSERT_TRUE(store_->NoteVerified(sha));
  ASSERT_TRUE(store_->Verified(sha, StampOf(blob)));

  const fs::path other = Write("other", "replace me, then truncate mE");
  fs::rename(other, blob);
  EXPECT_FALSE(store_->Verified(sha, StampOf(blob)));

  ASSERT_TRUE(store_->NoteVerified(sha));  // as if hashed again
  ASSERT_TRUE(store_->Verified(sha, StampOf(blob)));
  fs::resize_file(blob, 3);
  EXPECT_FALSE(store_->Verified(sha, StampOf(blob)));
}

// Given more blobs noted than kMaxVerified, the store should forget them
// rather than grow: every one noted before is hashed again when next sent.
TEST_F(BlobStoreTest, NotingMoreThanTheCapForgetsTheEarlierOnes) {
  const FileStamp stamp{1, 2, 3, 4, 5};
  store_->NoteVerified("first", stamp);
  for (size_t i = 1; i < BlobStore::kMaxVerified; ++i) {
    store_->NoteVerified("blob-" + std::to_string(i), stamp);
  }
  EXPECT_TRUE(store_->Verified("first", stamp));
  store_->NoteVerified("one-more", stamp);
  EXPECT_FALSE(store_->Verified("first", stamp));
  EXPECT_TRUE(store_->Verified("one-more", stamp));
}

// Given a file read by a ChunkSource told to skip the hash, the chunks
// should be the file's bytes all the same, and Unchanged should say
// whether the file still has the stamp it was opened with.
TEST_F(BlobStoreTest, ChunkSourceWithoutAHashReadsTheSameBytesAndSeesChanges) {
  std::string bytes(kChunkSize + 1000, 'a');
  bytes[kChunkSize] = 'b';
  const fs::path file = Write("big", bytes);
  auto source = ChunkSource::Open(file);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ((*source)->stamp(), StampOf(file));
  (*source)->SkipHash();
  EXPECT_FALSE((*source)->hashing());
  std::string read;
  while (!(*source)->done()) {
    auto chunk = (*source)->Next();
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    read += *chunk;
  }
  EXPECT_EQ(read, bytes);
  EXPECT_TRUE((*source)->Unchanged());
  std::ofstream(file, std::ios::app) << "more";
  EXPECT_FALSE((*source)->Unchanged());

  auto hashed = ChunkSource::Open(Write("small", "abc"));
  ASSERT_TRUE(hashed.ok());
  EXPECT_TRUE((*hashed)->hashing());
  ASSERT_TRUE((*hashed)->Next().ok());
  EXPECT_EQ((*hashed)->Final(), Sha256Hex("abc"));
}

}  // namespace
}  // namespace drover::artifacts
