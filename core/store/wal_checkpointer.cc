#include "core/store/wal_checkpointer.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <utility>

#include "core/store/sqlite_util.h"

namespace drover::store {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(
    sqlite3* writer, const std::string& db_path, Limits limits) {
  ConfigureSqliteOnce();
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(db_path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<sqlite3, Closer> own(raw);  // sqlite3 allocates one even when open fails
  if (rc != SQLITE_OK) return SqliteError(raw, rc, "open " + db_path + " to checkpoint it");
  // A connection finds the WAL when it first reads the database; until
  // then a checkpoint on it does nothing (and says so with -1 frames). The
  // busy timeout is the store's, for that read only: a PASSIVE checkpoint
  // never waits.
  sqlite3_busy_timeout(raw, 5000);
  std::string journal;
  {
    Statement mode;
    DROVER_RETURN_IF_ERROR(
        mode.Prepare(raw, "PRAGMA journal_mode", "read journal_mode").WithContext(db_path));
    Statement::Use use(mode);
    Result<bool> row = use.Step();
    if (!row.ok()) return row.status().WithContext(db_path);
    if (*row) journal = use.Text(0);
  }
  if (journal != "wal") {
    return FailedPrecondition(db_path + ": not in WAL mode (journal_mode is \"" + journal +
                              "\"), nothing to checkpoint");
  }
  std::unique_ptr<WalCheckpointer> c(new WalCheckpointer(writer, own.release(), limits));
  sqlite3_wal_hook(writer, &WalCheckpointer::OnCommit, c.get());
  c->thread_ = std::thread([p = c.get()] { p->Run(); });
  pthread_setname_np(c->thread_.native_handle(), "drover-ckpt");  // as top -H shows it
  return c;
}

WalCheckpointer::WalCheckpointer(sqlite3* writer, sqlite3* own, Limits limits)
    : writer_(writer), own_(own), limits_(limits) {}

WalCheckpointer::~WalCheckpointer() {
  sqlite3_wal_autocheckpoint(writer_, 1000);  // replaces the hook: SQLite's default
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wanted_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  sqlite3_close_v2(own_);
}

bool WalCheckpointer::WaitForBackgroundPasses(uint64_t n,
                                              std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return passed_cv_.wait_for(lock, timeout,
                             [&] { return background_passes_.load() >= n; });
}

// The writer's thread, after each commit, with the WAL's size in pages.
int WalCheckpointer::OnCommit(void* self, sqlite3* /*db*/, const char* /*schema*/,
                              int pages) {
  auto* c = static_cast<WalCheckpointer*>(self);
  // A WAL smaller than at the last commit has started over: nothing of it
  // is copied yet. (A count from before that is larger than the WAL.)
  const int last = c->wal_pages_.exchange(pages, std::memory_order_relaxed);
  if (pages < last) c->copied_pages_.store(0, std::memory_order_relaxed);
  if (pages < c->limits_.start_pages) return SQLITE_OK;
  if (pages >= c->limits_.force_pages) {
    std::lock_guard<std::mutex> pass(c->pass_mu_);  // the thread's pass ends first
    c->CheckpointOnWriter();
    return SQLITE_OK;
  }
  int copied = c->copied_pages_.load(std::memory_order_relaxed);
  if (copied > pages) copied = 0;
  if (copied > 0 && pages - copied <= c->limits_.slack_pages) {
    // The rest is the writer's: a checkpoint here, between this commit and
    // the next transaction, copies it all, and the next transaction starts
    // the WAL over. A checkpoint that ends while a transaction is open
    // cannot: the transaction reads the WAL.
    std::unique_lock<std::mutex> pass(c->pass_mu_, std::try_to_lock);
    if (pass.owns_lock()) c->CheckpointOnWriter();
    return SQLITE_OK;  // or the thread is passing: a later commit sees it
  }
  if (pages - copied >= c->limits_.start_pages) {
    {
      std::lock_guard<std::mutex> lock(c->mu_);
      c->wanted_ = true;
    }
    c->wanted_cv_.notify_one();
  }
  return SQLITE_OK;
}

// The writer's thread, pass_mu_ held.
void WalCheckpointer::CheckpointOnWriter() {
  // Like SQLite's own automatic checkpoint, whose place this takes: a
  // failure leaves the frames in the WAL, where readers find them, and a
  // later commit tries again.
  int log = 0, copied = 0;
  if (sqlite3_wal_checkpoint_v2(writer_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log,
                                &copied) == SQLITE_OK) {
    copied_pages_.store(copied, std::memory_order_relaxed);
  }
  writer_passes_.fetch_add(1, std::memory_order_relaxed);
}

void WalCheckpointer::Run() {
  // Passes in a row over what came in meanwhile, before waiting again.
  constexpr int kCatchUpPasses = 4;
  auto last_warning = std::chrono::steady_clock::time_point::min();
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wanted_cv_.wait(lock, [this] { return wanted_ || stop_; });
    if (stop_) return;
    wanted_ = false;
    lock.unlock();
    int rc = SQLITE_OK;
    for (int i = 0; i < kCatchUpPasses; ++i) {
      int log = 0, copied = 0;
      {
        std::lock_guard<std::mutex> pass(pass_mu_);
        rc = sqlite3_wal_checkpoint_v2(own_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log,
                                       &copied);
        if (rc == SQLITE_OK) copied_pages_.store(copied, std::memory_order_relaxed);
      }
      background_passes_.fetch_add(1, std::memory_order_relaxed);
      {
        std::lock_guard<std::mutex> l(mu_);  // so a waiter cannot miss it
      }
      passed_cv_.notify_all();
      // Done when it failed, or when what is left is the writer's to copy.
      if (rc != SQLITE_OK ||
          wal_pages_.load(std::memory_order_relaxed) - copied <= limits_.slack_pages) {
        break;
      }
    }
    // SQLITE_BUSY: another connection's checkpoint is running; a later
    // commit asks again. Anything else (a full disk, an I/O error) is
    // logged, at most once a minute: the WAL keeps every frame meanwhile,
    // and the writer's own checkpoints go on trying.
    const auto now = std::chrono::steady_clock::now();
    if (rc != SQLITE_OK && rc != SQLITE_BUSY &&
        now - last_warning > std::chrono::minutes(1)) {
      last_warning = now;
      spdlog::warn("state store: checkpoint of {}: {}", sqlite3_db_filename(own_, "main"),
                   sqlite3_errmsg(own_));
    }
    lock.lock();
  }
}

}  // namespace drover::store
