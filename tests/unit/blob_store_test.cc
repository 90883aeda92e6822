// BlobStore's linked writers (core/artifacts/blob_store.h), which `drover
// run` uses to store a task's file without copying it: on a real
// temporary directory, no process, no socket.
#include "core/artifacts/blob_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/artifacts/sha256.h"

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

}  // namespace
}  // namespace drover::artifacts
