// Unit tests of WalCheckpointer (core/store/wal_checkpointer.h) on a real
// SQLite file in WAL mode in a fresh temporary directory: the WAL stays
// bounded while a writer commits without pause, the thread does the bulk
// of the copying, nothing committed is lost, and a file not in WAL mode is
// refused.
#include "core/store/wal_checkpointer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>

namespace drover::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kPageSize = 4096;
constexpr int kFrameSize = kPageSize + 24;  // a WAL frame: its header, the page
constexpr int kWalHeader = 32;

class WalCheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-ckpt-test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    path_ = (root_ / "state.db").string();
  }
  void TearDown() override {
    if (db_ != nullptr) sqlite3_close(db_);
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // The writer connection, as the store opens it.
  void OpenWriter(const char* journal_mode) {
    ASSERT_EQ(
        sqlite3_open_v2(path_.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr),
        SQLITE_OK);
    // The store's busy timeout (core/store/schema.cc): a transaction that
    // starts the WAL over while the thread's checkpoint holds a read lock
    // for a moment waits for it instead of failing with SQLITE_BUSY.
    sqlite3_busy_timeout(db_, 5000);
    Exec(std::string("PRAGMA journal_mode = ") + journal_mode);
    Exec("PRAGMA synchronous = NORMAL");
    Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
  }

  void Exec(const std::string& sql) {
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
  }

  // One transaction that writes `pages` new pages (a row of that many pages'
  // worth of bytes, on overflow pages).
  void Commit(int pages) {
    Exec("INSERT INTO t (v) VALUES (zeroblob(" + std::to_string(pages * kPageSize) +
         "))");
  }

  uintmax_t WalBytes() const {
    std::error_code ec;
    const uintmax_t n = fs::file_size(path_ + "-wal", ec);
    return ec ? 0 : n;
  }

  fs::path root_;
  std::string path_;
  sqlite3* db_ = nullptr;
};

// Given a writer that commits 2,000 pages without a pause, and a
// checkpointer that copies from 40 pages, leaves the rest to the writer at
// 10 and forces at 200, the WAL file should never have held more than the
// forced size and a transaction or two, the thread should have run, and
// every row should be in the database after.
TEST_F(WalCheckpointerTest, WalStaysBoundedWhileTheWriterCommits) {
  OpenWriter("WAL");
  auto c = WalCheckpointer::Start(
      db_, path_, {.start_pages = 40, .slack_pages = 10, .force_pages = 200});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  constexpr int kCommits = 500, kPagesEach = 4;
  // A transaction writes its row's pages and a few of the table's own.
  constexpr uintmax_t kBound =
      kWalHeader + uintmax_t{200 + 2 * (kPagesEach + 4)} * kFrameSize;
  uintmax_t largest = 0;
  for (int i = 0; i < kCommits; ++i) {
    Commit(kPagesEach);
    largest = std::max(largest, WalBytes());
  }
  EXPECT_LE(largest, kBound);
  // The WAL passed 40 pages: the thread was asked, and runs.
  EXPECT_TRUE((*c)->WaitForBackgroundPasses(1, 30s));
  c->reset();

  sqlite3_stmt* count = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db_, "SELECT count(*), sum(length(v)) FROM t", -1, &count,
                               nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(count), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(count, 0), kCommits);
  EXPECT_EQ(sqlite3_column_int64(count, 1), int64_t{kCommits} * kPagesEach * kPageSize);
  sqlite3_finalize(count);
  sqlite3_stmt* check = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db_, "PRAGMA integrity_check", -1, &check, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(check), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(check, 0)), "ok");
  sqlite3_finalize(check);
}

// Given a writer that pauses once the WAL is past `start_pages`, the
// thread should copy all of it, and the next commit start the WAL over (its
// file does not grow). And once the checkpointer is gone, SQLite's own
// automatic checkpoint is back: the WAL stays near its 1,000 pages.
TEST_F(WalCheckpointerTest, WalStartsOverAfterTheThreadAndSqliteTakesOverAfter) {
  OpenWriter("WAL");
  {
    auto c = WalCheckpointer::Start(
        db_, path_, {.start_pages = 20, .slack_pages = 5, .force_pages = 100000});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    Commit(25);  // past start: the thread is asked
    ASSERT_TRUE((*c)->WaitForBackgroundPasses(1, 30s));
    const uintmax_t before = WalBytes();
    ASSERT_GT(before, kWalHeader + uintmax_t{25} * kFrameSize);
    Commit(1);
    EXPECT_EQ(WalBytes(), before);  // written from the start, not appended
    EXPECT_EQ((*c)->writer_passes(), 0u);
  }
  for (int i = 0; i < 400; ++i) Commit(8);  // 3,200 pages
  EXPECT_LT(WalBytes(), kWalHeader + uintmax_t{1100} * kFrameSize);
}

// Given a database in rollback-journal mode, Start should refuse it and
// name the file and the mode.
TEST_F(WalCheckpointerTest, RefusesADatabaseNotInWalMode) {
  OpenWriter("DELETE");
  auto c = WalCheckpointer::Start(db_, path_, {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(path_), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("\"delete\""), std::string::npos)
      << c.status().message();
}

}  // namespace
}  // namespace drover::store
