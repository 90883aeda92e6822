// Thin helpers over the sqlite3 C API for the store: error mapping and a
// prepared statement that is reset after every use. Internal to core/store.
#ifndef DROVER_CORE_STORE_SQLITE_UTIL_H_
#define DROVER_CORE_STORE_SQLITE_UTIL_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/base/status.h"

namespace drover::store {

// How a Status for a full disk begins (see SqliteError).
inline constexpr std::string_view kDiskFull = "state disk full: ";

// The Status for a failed sqlite3 call: "<op>: <sqlite3_errmsg>". Constraint
// failures on a key become kAlreadyExists, foreign-key failures kNotFound,
// a busy or locked database kUnavailable, a full disk kUnavailable with the
// message prefixed by kDiskFull, a file that is not a database
// kFailedPrecondition, everything else kIoError.
// Must be called before any other call on `db`, which would replace the
// error message.
Status SqliteError(sqlite3* db, int rc, std::string_view op);

// Sets SQLite's process-wide options, once, before its first use:
// no memory statistics, whose global mutex and counters every one of
// SQLite's allocations paid (6 to 10% of the instructions of a task's
// writes; docs/benchmarks.md). drover reads none of them. Where SQLite was
// already initialised, it changes nothing.
void ConfigureSqliteOnce();

// Runs SQL that returns no rows of interest (DDL, PRAGMA writes).
Status ExecSql(sqlite3* db, const char* sql, std::string_view op);

// One prepared statement. Owned by the Store's Impl; prepared once with
// SQLITE_PREPARE_PERSISTENT and reused. Not thread-safe.
//
// Use it through a Statement::Use, which resets the statement and clears its
// bindings when it goes out of scope: a SELECT left un-reset would hold a
// read transaction open and keep the WAL from being checkpointed.
class Statement {
 public:
  Statement() = default;

  // Prepares `sql`; `op` names it in error messages ("insert into attempts").
  Status Prepare(sqlite3* db, const char* sql, std::string op);
  bool prepared() const { return stmt_ != nullptr; }
  const std::string& op() const { return op_; }

  class Use {
   public:
    explicit Use(Statement& s) : s_(s) {}
    ~Use();
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

    // Parameters are 1-based, as in SQLite. A bind error is kept and
    // reported by the next Step()/Run().
    Use& Bind(int i, int64_t v);
    // Text is bound without a copy (SQLITE_STATIC: copying cost an eighth
    // of InsertJob), so the bytes must stay valid until this Use is
    // destroyed. Binding a temporary std::string does not compile.
    Use& Bind(int i, std::string_view v);
    Use& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
    Use& Bind(int i, std::string&& v) = delete;
    Use& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }

    // Steps once: true when a row is available, false when done.
    Result<bool> Step();
    // Steps until done, for statements whose rows are not read.
    Status Run();
    // Rows changed by the last Run() (sqlite3_changes).
    int Changes() const;

    int64_t Int(int col) const;
    std::string Text(int col) const;

   private:
    Statement& s_;
    int bind_rc_ = SQLITE_OK;
  };

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  sqlite3* db_ = nullptr;
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  std::string op_;
};

}  // namespace drover::store

#endif  // DROVER_CORE_STORE_SQLITE_UTIL_H_
