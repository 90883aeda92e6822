// The state database's identity and schema: the application id that marks a
// SQLite file as drover's, the schema version, and the ordered migrations
// that bring an older file up to it. docs/state.md describes the schema in
// prose; keep the two in step. Internal to core/store.
#ifndef DROVER_CORE_STORE_SCHEMA_H_
#define DROVER_CORE_STORE_SCHEMA_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "core/base/status.h"

namespace drover::store {

// PRAGMA application_id of every drover state database: "DRVR".
inline constexpr int32_t kApplicationId = 0x44525652;

// PRAGMA user_version after the last migration this drover knows.
inline constexpr int kSchemaVersion = 12;

// Readies a freshly opened connection on `db_path`:
//  - sets the busy timeout;
//  - refuses (kFailedPrecondition, message naming db_path) a file that is
//    not SQLite, a SQLite file of another application, or a drover database
//    with a schema newer than kSchemaVersion; such a file is left unchanged;
//  - sets journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON;
//  - runs the missing migrations in one IMMEDIATE transaction, so two
//    processes opening a new directory at once migrate it once.
// Returns the schema version of the database (kSchemaVersion on success).
Result<int> PrepareDatabase(sqlite3* db, const std::string& db_path);

// Readies a connection that only reads a database another connection
// made: the busy timeout, the same refusals, and kFailedPrecondition when
// the file is not at kSchemaVersion yet (a reader never migrates); then
// query_only, so that no statement run on it can write.
Status PrepareReader(sqlite3* db, const std::string& db_path);

}  // namespace drover::store

#endif  // DROVER_CORE_STORE_SCHEMA_H_
