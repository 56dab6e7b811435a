// SPDX-License-Identifier: Apache-2.0
// SqlStore: the Store interface over a SQL database, shared by the sqlite:// and postgresql://
// backends — one schema, one set of queries, fencing checked inside each write's transaction.
//
// Schema (version 2; see schema_migrations() in sql_store.cpp and docs/stores.md):
//   schema_version(version PK, description, applied_ns)  migrations applied by lockferry itself
//   nodes(node PK, epoch, epoch_changed_ns, adopter)      one row per node: its fencing epoch
//                                                         and the node that set it
//   monitor_records(node, file_name, line PK, ...)        one row per line of a statd file
//   lock_records(node, seq PK, ...)                       a node's lock table, in table order
//   migrations(from_node, epoch PK, to_node, ...)         who adopted whom
// Every write of a node's records runs in one transaction that first locks that node's row in
// `nodes` (PostgreSQL: SELECT ... FOR UPDATE; SQLite: BEGIN IMMEDIATE takes the database's
// write lock) and compares the writer's epoch with it, so a bump_epoch either happens before
// the write (which is then refused) or after it; never in the middle.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "store/store.h"

namespace lockferry::store {

// The database could not be reached or the connection broke (the write may or may not have
// been committed). Backends that reconnect turn it into kErrQueued or a clear read error.
inline constexpr int kErrUnreachable = 1003;
// The database holds a schema newer than this binary knows: refuse rather than misread it.
inline constexpr int kErrSchemaNewer = 1004;

// Parameter values. uint64 columns (epochs, device/inode numbers, lock ranges and owners) are
// numeric(20,0) in PostgreSQL and INTEGER in SQLite, where values above 2^63-1 are stored as
// their two's-complement int64 (a lock to the end of the file has range_end -1 there).
using SqlValue = std::variant<std::int64_t, std::uint64_t, std::string>;
using SqlRow = std::vector<std::string>;  // every column as text; see SqlStore::column_u64

enum class SqlDialect { kSqlite, kPostgres };

// One connection to one database. Statements use $1, $2, ... placeholders (rewritten for
// SQLite) and may contain {u64} and {text} type tokens in DDL (see kSchema).
class SqlDatabase {
 public:
  virtual ~SqlDatabase() = default;
  virtual SqlDialect dialect() const = 0;
  // A transaction around everything until commit() or rollback(). `write` transactions take
  // the write lock up front where the engine needs that (SQLite: BEGIN IMMEDIATE).
  virtual Result<void> begin(bool write) = 0;
  virtual Result<void> commit() = 0;
  virtual void rollback() = 0;
  virtual Result<std::vector<SqlRow>> query(std::string_view sql,
                                            const std::vector<SqlValue>& params = {}) = 0;
};

class SqlStore : public Store {
 public:
  Result<void> put_monitor(const MonitorRecord& record) override;
  Result<void> put_monitor_file(const std::vector<MonitorRecord>& records) override;
  Result<void> delete_monitor(std::string_view node, std::string_view file_name,
                              std::uint64_t epoch) override;
  Result<std::vector<MonitorRecord>> list_monitor(std::string_view node) override;
  Result<void> put_locks(std::string_view node, std::uint64_t epoch,
                         const std::vector<LockRecord>& locks) override;
  // One transaction: the removed and replaced ranges deleted by key, the put ones inserted.
  Result<void> update_locks(std::string_view node, std::uint64_t epoch,
                            const LockDelta& delta) override;
  Result<std::vector<LockRecord>> list_locks(std::string_view node) override;
  Result<std::vector<std::string>> list_nodes() override;
  Result<std::uint64_t> epoch(std::string_view node) override;
  Result<Fence> fence(std::string_view node) override;
  Result<std::uint64_t> bump_epoch(std::string_view node, std::uint64_t expected,
                                   std::string_view adopter) override;
  Result<void> put_migration(const MigrationRecord& migration) override;
  Result<std::vector<MigrationRecord>> list_migrations() override;

  // The schema version this binary creates and understands.
  static int schema_version();

 protected:
  // The connection to use now, or an error (code kErrUnreachable when the database cannot be
  // reached; the backend decides when to try again).
  virtual Result<SqlDatabase*> database() = 0;
  // Called when a statement failed with kErrUnreachable: the connection is no longer usable.
  virtual void connection_lost() {}

  // Runs `body` in one transaction and commits it; rolls back when body or commit fails.
  Result<void> transaction(bool write, const std::function<Result<void>(SqlDatabase&)>& body);

  // Creates or upgrades the schema (versioned migrations recorded in schema_version, applied
  // in one transaction), or fails with kErrSchemaNewer when the database is ahead of us.
  static Result<void> migrate_schema(SqlDatabase& db, std::string_view where);

  // The validation every write does before it touches the database (and before a backend
  // queues it): names, record fields, and that the parts of one write agree.
  static Result<void> check_monitor_file(const std::vector<MonitorRecord>& records);
  static Result<void> check_delete(std::string_view node, std::string_view file_name);
  static Result<void> check_lock_table(std::string_view node, std::uint64_t epoch,
                                       const std::vector<LockRecord>& locks);

  // The unchecked writes, for backends that replay queued writes already checked.
  Result<void> write_monitor_file(const std::vector<MonitorRecord>& records);
  Result<void> write_delete(std::string_view node, std::string_view file_name, std::uint64_t epoch);
  Result<void> write_locks(std::string_view node, std::uint64_t epoch,
                           const std::vector<LockRecord>& locks);
  Result<void> write_lock_delta(std::string_view node, std::uint64_t epoch, const LockDelta& delta);
};

// A uint64 column read back as text: decimal (PostgreSQL numeric), or a negative int64 that
// SQLite stored for a value above 2^63-1.
Result<std::uint64_t> column_u64(const std::string& text);
Result<std::int64_t> column_i64(const std::string& text);

}  // namespace lockferry::store
