// SPDX-License-Identifier: Apache-2.0
// postgresql:// store: SqlDatabase over libpqxx, reconnection with backoff, the write backlog.
#include "store/pg_store.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include "statmon/record.h"

namespace lockferry::store {
namespace {

// A statement that waits longer than this (a row lock held by a hung peer, a stuck server)
// fails instead of hanging lockferryd's event loop.
constexpr std::string_view kStatementTimeout = "30s";
constexpr std::string_view kConnectTimeoutSeconds = "10";

// Connection-level failures: the server went away, restarts, or refuses connections for now.
bool is_connection_state(const std::string& sqlstate) {
  return sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P0", 0) == 0;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Every libpqxx failure as an Error; connection failures get kErrUnreachable.
Error pg_error(std::string_view where, std::string_view what) {
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return Error{fmt::format("{}: {}: connection lost: {}", where, what, trim(e.what())),
                 kErrUnreachable};
  } catch (const pqxx::in_doubt_error& e) {
    return Error{fmt::format("{}: {}: connection lost during commit (it may or may not have been "
                             "stored): {}",
                             where, what, trim(e.what())),
                 kErrUnreachable};
  } catch (const pqxx::sql_error& e) {
    return Error{fmt::format("{}: {}: {} (SQLSTATE {})", where, what, trim(e.what()), e.sqlstate()),
                 is_connection_state(e.sqlstate()) ? kErrUnreachable : 0};
  } catch (const std::exception& e) {
    return make_error("{}: {}: {}", where, what, trim(e.what()));
  }
}

std::string with_connect_timeout(std::string_view url) {
  std::string out(url);
  if (out.find("connect_timeout=") != std::string::npos) return out;
  out += out.find('?') == std::string::npos ? '?' : '&';
  out += "connect_timeout=";
  out += kConnectTimeoutSeconds;
  return out;
}

std::string as_text(const SqlValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* u = std::get_if<std::uint64_t>(&v)) return std::to_string(*u);
  return std::get<std::string>(v);
}

}  // namespace

class PgDatabase final : public SqlDatabase {
 public:
  // Throws what pqxx::connection throws; the caller turns it into an Error.
  PgDatabase(const std::string& conninfo, std::string where)
      : conn_(conninfo), where_(std::move(where)) {
    conn_.set_client_encoding("UTF8");
  }

  SqlDialect dialect() const override { return SqlDialect::kPostgres; }

  Result<void> begin(bool /*write: row locks are taken by the statements*/) override {
    try {
      tx_ = std::make_unique<pqxx::work>(conn_);
      return {};
    } catch (...) {
      tx_.reset();
      return pg_error(where_, "cannot start a transaction");
    }
  }

  Result<void> commit() override {
    try {
      tx_->commit();
      tx_.reset();
      return {};
    } catch (...) {
      tx_.reset();
      return pg_error(where_, "commit failed");
    }
  }

  void rollback() override {
    try {
      if (tx_) tx_->abort();
    } catch (const std::exception& e) {
      spdlog::debug("{}: rollback: {}", where_, e.what());  // the server rolls back anyway
    }
    tx_.reset();
  }

  Result<std::vector<SqlRow>> query(std::string_view sql,
                                    const std::vector<SqlValue>& params = {}) override {
    try {
      std::vector<std::string> text;
      text.reserve(params.size());
      for (const auto& p : params) text.push_back(as_text(p));
      std::unique_ptr<pqxx::nontransaction> autocommit;
      pqxx::transaction_base* tx = tx_.get();
      if (tx == nullptr) {
        autocommit = std::make_unique<pqxx::nontransaction>(conn_);
        tx = autocommit.get();
      }
      const pqxx::result result =
          tx->exec_params(std::string(sql), pqxx::prepare::make_dynamic_params(text));
      std::vector<SqlRow> rows;
      rows.reserve(result.size());
      for (const auto& row : result) {
        SqlRow out;
        out.reserve(row.size());
        for (const auto& field : row) {
          out.emplace_back(field.is_null() ? std::string()
                                           : std::string(field.c_str(), field.size()));
        }
        rows.push_back(std::move(out));
      }
      return rows;
    } catch (...) {
      return pg_error(where_, "statement failed");
    }
  }

 private:
  pqxx::connection conn_;
  std::string where_;
  std::unique_ptr<pqxx::work> tx_;
};

std::string hide_password(std::string_view url) {
  std::string out(url);
  // postgresql://user:secret@host/... : the password sits between the first ':' after the
  // scheme and the '@' of the authority.
  if (auto scheme = out.find("://"); scheme != std::string::npos) {
    const auto start = scheme + 3;
    const auto at = out.find('@', start);
    const auto slash = out.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const auto colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  for (auto pos = out.find("password="); pos != std::string::npos;
       pos = out.find("password=", pos + 1)) {
    const auto value = pos + 9;
    const auto end = out.find_first_of("& ", value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
  }
  return out;
}

PgStore::PgStore(std::string url, PgOptions options)
    : url_(std::move(url)),
      shown_url_(hide_password(url_)),
      options_(options),
      retry_delay_(options.first_retry) {}

PgStore::~PgStore() {
  if (!backlog_.empty()) {
    spdlog::error(
        "store {}: {} queued writes were never stored (the database stayed "
        "unreachable); lockferryd's reconcile scan writes them again at its next start",
        shown_url_, backlog_.size());
  }
}

Result<std::unique_ptr<PgStore>> PgStore::open(std::string_view url, PgOptions options) {
  std::unique_ptr<PgStore> store(new PgStore(std::string(url), options));
  auto db = store->database();
  if (!db) return db.error();
  return store;
}

std::string PgStore::url() const { return shown_url_; }

std::size_t PgStore::backlog() const {
  std::lock_guard lock(mu_);
  return backlog_.size();
}

Result<SqlDatabase*> PgStore::database() {
  if (db_) return static_cast<SqlDatabase*>(db_.get());
  const auto now = Clock::now();
  if (now < next_attempt_) {
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt_ - now);
    return Error{fmt::format("PostgreSQL store {} is unreachable ({}); next attempt in {} ms",
                             shown_url_, last_error_, wait.count()),
                 kErrUnreachable};
  }
  const std::string where = "PostgreSQL store " + shown_url_;
  auto failed = [&](Error error) -> Error {
    last_error_ = error.message;
    next_attempt_ = Clock::now() + retry_delay_;
    retry_delay_ = std::min(retry_delay_ * 2, options_.max_retry);
    return error;
  };
  std::unique_ptr<PgDatabase> db;
  try {
    db = std::make_unique<PgDatabase>(with_connect_timeout(url_), where);
  } catch (...) {
    auto e = pg_error(where, "cannot connect");
    e.code = kErrUnreachable;  // whatever libpq says, there is no usable connection
    return failed(std::move(e));
  }
  auto timeout = db->query(fmt::format("SET statement_timeout = '{}'", kStatementTimeout));
  if (!timeout) return failed(timeout.error());
  if (auto ok = migrate_schema(*db, where); !ok) {
    if (ok.error().code == kErrUnreachable) return failed(ok.error());
    return ok.error();  // a newer schema, a permission problem: retrying will not help
  }
  if (!last_error_.empty()) {
    spdlog::info(
        "{}: connected again{}", where,
        backlog_.empty() ? "" : fmt::format(", {} queued writes to store", backlog_.size()));
  }
  last_error_.clear();
  retry_delay_ = options_.first_retry;
  db_ = std::move(db);
  return static_cast<SqlDatabase*>(db_.get());
}

void PgStore::connection_lost() {
  if (db_) spdlog::warn("PostgreSQL store {}: connection lost; reconnecting", shown_url_);
  db_.reset();
  last_error_ = "connection lost";
}

std::size_t PgStore::flush() {
  std::lock_guard lock(mu_);
  flush_locked();
  return backlog_.size();
}

void PgStore::flush_locked() {
  while (!backlog_.empty()) {
    Pending& next = backlog_.front();
    auto result = next.write();
    if (!result && result.error().code == kErrUnreachable) return;  // still down: keep order
    if (!result) {
      // Checked before it was queued, so this is fencing (adopted meanwhile) or the server
      // refusing it; either way retrying cannot help.
      spdlog::error("store {}: dropped queued write of {}: {}", shown_url_, next.what,
                    result.error().message);
    } else {
      spdlog::debug("store {}: wrote queued {}", shown_url_, next.what);
    }
    backlog_.pop_front();
    if (backlog_.empty()) spdlog::info("store {}: backlog written", shown_url_);
  }
}

template <typename F>
auto PgStore::retry_on_stale_connection(const F& call) -> decltype(call()) {
  const bool had_connection = db_ != nullptr;
  auto result = call();
  // A connection that broke while idle (the server restarted since the last call) fails only
  // when used; one new connection is made at once rather than after the backoff. Only for
  // calls that are safe to repeat, which excludes bump_epoch (its commit may have happened).
  if (!result && result.error().code == kErrUnreachable && had_connection && db_ == nullptr) {
    result = call();
  }
  return result;
}

Result<void> PgStore::write_or_queue(Pending pending) {
  std::lock_guard lock(mu_);
  flush_locked();
  std::string reason;
  if (backlog_.empty()) {
    auto result = retry_on_stale_connection(pending.write);
    if (result || result.error().code != kErrUnreachable) return result;
    reason = result.error().message;
  } else {
    reason = fmt::format("{} earlier writes are still waiting: {}", backlog_.size(), last_error_);
  }
  std::erase_if(backlog_, [&](const Pending& p) { return p.key == pending.key; });
  if (backlog_.size() >= options_.max_backlog) {
    return make_error(
        "{}; the backlog is full ({} writes), so the write of {} is dropped: it "
        "is written again when the caller retries (lockferryd: its next reconcile "
        "scan)",
        reason, backlog_.size(), pending.what);
  }
  backlog_.push_back(std::move(pending));
  return Error{fmt::format("{}; the write of {} is queued ({} waiting) and will be stored in "
                           "order once the database is back: not stored yet",
                           reason, backlog_.back().what, backlog_.size()),
               kErrQueued};
}

Result<void> PgStore::put_monitor(const MonitorRecord& record) {
  return put_monitor_file({record});
}

Result<void> PgStore::put_monitor_file(const std::vector<MonitorRecord>& records) {
  if (auto ok = check_monitor_file(records); !ok) return ok;
  const auto& first = records.front();
  return write_or_queue({"monitor/" + first.node + "/" + first.file_name,
                         fmt::format("monitor record '{}' of node '{}'",
                                     statmon::printable(first.file_name), first.node),
                         [this, records] { return write_monitor_file(records); }});
}

Result<void> PgStore::delete_monitor(std::string_view node, std::string_view file_name,
                                     std::uint64_t epoch) {
  if (auto ok = check_delete(node, file_name); !ok) return ok;
  return write_or_queue({fmt::format("monitor/{}/{}", node, file_name),
                         fmt::format("the removal of monitor record '{}' of node '{}'",
                                     statmon::printable(file_name), node),
                         [this, n = std::string(node), f = std::string(file_name), epoch] {
                           return write_delete(n, f, epoch);
                         }});
}

Result<void> PgStore::put_locks(std::string_view node, std::uint64_t epoch,
                                const std::vector<LockRecord>& locks) {
  if (auto ok = check_lock_table(node, epoch, locks); !ok) return ok;
  return write_or_queue(
      {fmt::format("locks/{}", node),
       fmt::format("the lock table of node '{}' ({} locks)", node, locks.size()),
       [this, n = std::string(node), epoch, locks] { return write_locks(n, epoch, locks); }});
}

// A delta is never queued: it means something only on top of what the database holds, and a
// queued whole table (the caller's retry after this error) replaces any queued one anyway.
Result<void> PgStore::update_locks(std::string_view node, std::uint64_t epoch,
                                   const LockDelta& delta) {
  if (auto ok = check_lock_table(node, epoch, delta.put); !ok) return ok;
  std::lock_guard lock(mu_);
  flush_locked();
  if (!backlog_.empty())
    return make_error(
        "{} earlier writes are still waiting: {}; the lock table of node '{}' must "
        "be written whole",
        backlog_.size(), last_error_, statmon::printable(node));
  return retry_on_stale_connection([&] { return write_lock_delta(node, epoch, delta); });
}

// Reads and the writes that are never queued see the backlog written first (a caller reads
// what it wrote), and fail with the connection error while the database is unreachable.
Result<std::vector<MonitorRecord>> PgStore::list_monitor(std::string_view node) {
  std::lock_guard lock(mu_);
  flush_locked();
  return retry_on_stale_connection([&] { return SqlStore::list_monitor(node); });
}

Result<std::vector<LockRecord>> PgStore::list_locks(std::string_view node) {
  std::lock_guard lock(mu_);
  flush_locked();
  return retry_on_stale_connection([&] { return SqlStore::list_locks(node); });
}

Result<std::vector<std::string>> PgStore::list_nodes() {
  std::lock_guard lock(mu_);
  flush_locked();
  return retry_on_stale_connection([&] { return SqlStore::list_nodes(); });
}

Result<std::uint64_t> PgStore::epoch(std::string_view node) {
  std::lock_guard lock(mu_);
  flush_locked();
  return retry_on_stale_connection([&] { return SqlStore::epoch(node); });
}

Result<Fence> PgStore::fence(std::string_view node) {
  std::lock_guard lock(mu_);
  flush_locked();
  return retry_on_stale_connection([&] { return SqlStore::fence(node); });
}

Result<std::uint64_t> PgStore::bump_epoch(std::string_view node, std::uint64_t expected,
                                          std::string_view adopter) {
  std::lock_guard lock(mu_);
  flush_locked();
  // Not repeated after a failure (its commit may have happened), so first make sure that an
  // idle connection still works: a broken one is replaced before the bump, not after it.
  if (db_) {
    auto alive = db_->query("SELECT 1");
    if (!alive && alive.error().code == kErrUnreachable) connection_lost();
  }
  return SqlStore::bump_epoch(node, expected, adopter);
}

Result<void> PgStore::put_migration(const MigrationRecord& migration) {
  std::lock_guard lock(mu_);
  flush_locked();
  return retry_on_stale_connection([&] { return SqlStore::put_migration(migration); });
}

Result<std::vector<MigrationRecord>> PgStore::list_migrations() {
  std::lock_guard lock(mu_);
  flush_locked();
  return retry_on_stale_connection([&] { return SqlStore::list_migrations(); });
}

}  // namespace lockferry::store
