#include "core/store/sqlite_util.h"

#include <cerrno>
#include <mutex>
#include <utility>

namespace drover::store {

Status SqliteError(sqlite3* db, int rc, std::string_view op) {
  std::string msg(op);
  msg += ": ";
  int extended = rc;
  int system_errno = 0;
  if (db != nullptr) {
    msg += sqlite3_errmsg(db);
    extended = sqlite3_extended_errcode(db);
    system_errno = sqlite3_system_errno(db);
  } else {
    msg += sqlite3_errstr(rc);
  }
  // Out of space: SQLITE_FULL from a write, or an I/O error whose errno is
  // ENOSPC (growing the -shm file, for one). Callers may retry once space
  // returns, so it is kUnavailable, and says so first.
  if ((extended & 0xff) == SQLITE_FULL ||
      ((extended & 0xff) == SQLITE_IOERR && system_errno == ENOSPC)) {
    return Unavailable(std::string(kDiskFull) + msg);
  }
  switch (extended) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_ROWID:
      return AlreadyExists(std::move(msg));
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return NotFound(std::move(msg));
    default:
      break;
  }
  switch (extended & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(std::move(msg));
    case SQLITE_NOTADB:
      return FailedPrecondition(std::move(msg));
    case SQLITE_MISUSE:
      return Internal(std::move(msg));
    default:
      return IoError(std::move(msg));
  }
}

void ConfigureSqliteOnce() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

Status ExecSql(sqlite3* db, const char* sql, std::string_view op) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, op);
  return Status::Ok();
}

Status Statement::Prepare(sqlite3* db, const char* sql, std::string op) {
  db_ = db;
  op_ = std::move(op);
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  stmt_.reset(raw);
  if (rc != SQLITE_OK) return SqliteError(db, rc, "prepare " + op_);
  return Status::Ok();
}

Statement::Use::~Use() {
  if (s_.stmt_ == nullptr) return;
  // The return value repeats the last step's error, already reported.
  sqlite3_reset(s_.stmt_.get());
  sqlite3_clear_bindings(s_.stmt_.get());
}

Statement::Use& Statement::Use::Bind(int i, int64_t v) {
  if (s_.stmt_ == nullptr) return *this;
  int rc = sqlite3_bind_int64(s_.stmt_.get(), i, v);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement::Use& Statement::Use::Bind(int i, std::string_view v) {
  if (s_.stmt_ == nullptr) return *this;
  // A null data pointer would bind SQL NULL; every text column is NOT NULL.
  const char* data = v.data() != nullptr ? v.data() : "";
  int rc =
      sqlite3_bind_text64(s_.stmt_.get(), i, data, v.size(), SQLITE_STATIC, SQLITE_UTF8);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> Statement::Use::Step() {
  if (s_.stmt_ == nullptr) return Internal(s_.op_ + ": statement not prepared");
  if (bind_rc_ != SQLITE_OK) return SqliteError(s_.db_, bind_rc_, "bind " + s_.op_);
  int rc = sqlite3_step(s_.stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(s_.db_, rc, s_.op_);
}

Status Statement::Use::Run() {
  for (;;) {
    Result<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
  }
}

int Statement::Use::Changes() const { return sqlite3_changes(s_.db_); }

int64_t Statement::Use::Int(int col) const {
  return sqlite3_column_int64(s_.stmt_.get(), col);
}

std::string Statement::Use::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(s_.stmt_.get(), col);
  if (p == nullptr) return std::string();
  int n = sqlite3_column_bytes(s_.stmt_.get(), col);
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

}  // namespace drover::store
