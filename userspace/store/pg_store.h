// SPDX-License-Identifier: Apache-2.0
// postgresql:// store: the shared store for clusters that outgrow a shared directory. Every node
// connects to one PostgreSQL database (libpqxx); lockferry creates and upgrades its schema.
//
// What "acknowledged" means here: a write returns ok only after PostgreSQL committed it. While
// the database is unreachable, put_monitor_file / delete_monitor / put_locks are checked, kept
// in an in-memory backlog (bounded; a newer write of the same record replaces the queued one)
// and refused with kErrQueued — they are NOT acknowledged: the backlog is volatile and lost if
// the process exits before the database is back. The backlog is written in order, each write
// in its own fenced transaction, before any later call is served, as soon as a connection is
// made again (reconnects back off from 250 ms to 30 s). A queued write that is fenced by then is
// dropped and logged. Callers that need a record stored retry it (lockferryd's reconcile scan
// does); bump_epoch and put_migration are never queued: failover needs their real outcome.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "store/sql_store.h"

namespace lockferry::store {

class PgDatabase;

struct PgOptions {
  std::size_t max_backlog = 10'000;  // writes kept while the database is unreachable
  std::chrono::milliseconds first_retry{250};
  std::chrono::milliseconds max_retry{30'000};
};

class PgStore final : public SqlStore {
 public:
  // `url` is a libpq connection URI (postgresql://user@host:port/db?options, or
  // postgresql:///db?host=/socket/dir). Connects once and creates or upgrades the schema; fails
  // with a clear message when the database cannot be reached or its schema is newer than ours.
  static Result<std::unique_ptr<PgStore>> open(std::string_view url, PgOptions options = {});
  ~PgStore() override;

  std::string url() const override;
  std::size_t backlog() const override;

  // Writes the backlog now if the database can be reached; returns how many writes still wait.
  std::size_t flush();

  Result<void> put_monitor(const MonitorRecord& record) override;
  Result<void> put_monitor_file(const std::vector<MonitorRecord>& records) override;
  Result<void> delete_monitor(std::string_view node, std::string_view file_name,
                              std::uint64_t epoch) override;
  Result<void> put_locks(std::string_view node, std::uint64_t epoch,
                         const std::vector<LockRecord>& locks) override;
  // Never queued: refused while the backlog holds writes or the database is unreachable.
  Result<void> update_locks(std::string_view node, std::uint64_t epoch,
                            const LockDelta& delta) override;
  Result<std::vector<MonitorRecord>> list_monitor(std::string_view node) override;
  Result<std::vector<LockRecord>> list_locks(std::string_view node) override;
  Result<std::vector<std::string>> list_nodes() override;
  Result<std::uint64_t> epoch(std::string_view node) override;
  Result<Fence> fence(std::string_view node) override;
  Result<std::uint64_t> bump_epoch(std::string_view node, std::uint64_t expected,
                                   std::string_view adopter) override;
  Result<void> put_migration(const MigrationRecord& migration) override;
  Result<std::vector<MigrationRecord>> list_migrations() override;

 protected:
  Result<SqlDatabase*> database() override;
  void connection_lost() override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    std::string key;   // the record it writes: a newer write of the same key replaces it
    std::string what;  // for logs
    std::function<Result<void>()> write;
  };

  PgStore(std::string url, PgOptions options);
  Result<void> write_or_queue(Pending pending);
  template <typename F>
  auto retry_on_stale_connection(const F& call) -> decltype(call());
  void flush_locked();

  const std::string url_;        // as given: it may hold a password
  const std::string shown_url_;  // password hidden
  const PgOptions options_;
  mutable std::recursive_mutex mu_;
  std::unique_ptr<PgDatabase> db_;
  std::deque<Pending> backlog_;
  Clock::time_point next_attempt_{};
  std::chrono::milliseconds retry_delay_;
  std::string last_error_;  // why the last connection attempt failed or the connection broke
};

// The URL with any password (user:password@ or password=) replaced by "***".
std::string hide_password(std::string_view url);

}  // namespace lockferry::store
