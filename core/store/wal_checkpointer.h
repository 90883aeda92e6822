// WalCheckpointer: SQLite's WAL checkpoints, moved off the writer's thread.
//
// In WAL mode every commit appends pages to the state file's -wal file; a
// checkpoint copies them back into the database and lets the WAL start over.
// SQLite's default runs one inside the commit that takes the WAL past 1,000
// pages, so the coordinator's loop paid the copy and two fdatasync calls
// every thousand pages (docs/benchmarks.md, "The checkpoints").
//
// Here the writer's commits only signal, and a thread with its own
// connection does the copying and the syncing (a PASSIVE checkpoint, which
// never blocks a writer). The WAL can start over only when a checkpoint has
// copied every frame in it, which a checkpoint running beside a busy writer
// rarely sees: the thread passes again over what came in during its last
// pass, a shorter pass each time, and once it is within `slack_pages` of
// the WAL's end the writer copies that rest itself, inside a commit: a few
// pages and two small syncs. At `force_pages` the writer waits for the
// thread's pass to end and checkpoints, whatever the thread managed, so the
// WAL stays bounded.
//
// Durability does not change: a commit is as durable as before (WAL,
// synchronous=NORMAL), and a checkpoint never loses a frame it did not copy.
#ifndef DROVER_CORE_STORE_WAL_CHECKPOINTER_H_
#define DROVER_CORE_STORE_WAL_CHECKPOINTER_H_

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/base/status.h"

namespace drover::store {

class WalCheckpointer {
 public:
  // WAL sizes in pages. The defaults make the thread start where SQLite's
  // own checkpoint would (1,000 pages, 4 MiB with 4 KiB pages).
  struct Limits {
    int start_pages = 1000;  // the thread copies once this many are not copied
    int slack_pages = 256;   // the writer copies the rest when this few are left
    int force_pages = 8000;  // the writer copies, waiting for the thread
  };

  // Takes over `writer`'s checkpoints (its WAL hook: SQLite's automatic
  // checkpoint is off from here on) and starts the thread, with its own
  // connection to `db_path`. `writer` must outlive this object.
  static Result<std::unique_ptr<WalCheckpointer>> Start(sqlite3* writer,
                                                        const std::string& db_path,
                                                        Limits limits);
  // Gives `writer` SQLite's automatic checkpoint back, and stops and joins
  // the thread (a pass in progress ends first).
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Checkpoints run so far, by the thread and by the writer (for tests and
  // the benchmarks), and a wait until the thread has run `n` (false when
  // `timeout` passed first).
  uint64_t background_passes() const { return background_passes_.load(); }
  uint64_t writer_passes() const { return writer_passes_.load(); }
  bool WaitForBackgroundPasses(uint64_t n, std::chrono::milliseconds timeout);

 private:
  WalCheckpointer(sqlite3* writer, sqlite3* own, Limits limits);
  static int OnCommit(void* self, sqlite3* db, const char* schema, int pages);
  void Run();
  void CheckpointOnWriter();

  sqlite3* const writer_;
  sqlite3* const own_;  // the thread's connection
  const Limits limits_;

  std::mutex mu_;
  std::condition_variable wanted_cv_;  // the thread waits for a pass to do
  std::condition_variable passed_cv_;  // WaitForBackgroundPasses waits
  bool wanted_ = false;                // guarded by mu_
  bool stop_ = false;                  // guarded by mu_
  // Held by whoever checkpoints, the thread or the writer: SQLite runs one
  // checkpoint at a time and answers the other SQLITE_BUSY.
  std::mutex pass_mu_;
  // The WAL's size at the last commit, and how much of it the last
  // checkpoint copied (0 once the WAL started over).
  std::atomic<int> wal_pages_{0};
  std::atomic<int> copied_pages_{0};
  std::atomic<uint64_t> background_passes_{0};
  std::atomic<uint64_t> writer_passes_{0};
  std::thread thread_;
};

}  // namespace drover::store

#endif  // DROVER_CORE_STORE_WAL_CHECKPOINTER_H_
