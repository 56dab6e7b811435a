// SPDX-License-Identifier: Apache-2.0
// SqlStore: schema migrations, fenced writes and reads over SqlDatabase; see sql_store.h.
#include "store/sql_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "common/clock.h"
#include "common/text.h"
#include "statmon/record.h"
#include "store/record_checks.h"

namespace lockferry::store {
namespace {

// The schema, as versioned migrations. A migration is never edited once released: a change is
// a new entry. Tokens: {u64} unsigned 64-bit, {i64} signed 64-bit, {text} text compared
// byte-wise (so ORDER BY agrees with the dir:// store and std::string).
struct SchemaMigration {
  int version;
  std::string_view description;
  std::vector<std::string_view> statements;
};

const std::vector<SchemaMigration>& schema_migrations() {
  static const std::vector<SchemaMigration> migrations{
      {1,
       "nodes with fencing epochs, monitor records, lock tables, migrations",
       {
           R"(CREATE TABLE nodes (
  node {text} PRIMARY KEY,
  epoch {u64} NOT NULL DEFAULT 0,
  epoch_changed_ns {i64} NOT NULL DEFAULT 0
))",
           R"(CREATE TABLE monitor_records (
  node {text} NOT NULL REFERENCES nodes (node),
  file_name {text} NOT NULL,
  line_no integer NOT NULL,
  epoch {u64} NOT NULL,
  first_seen_ns {i64} NOT NULL,
  last_seen_ns {i64} NOT NULL,
  addr {i64} NOT NULL,
  prog {i64} NOT NULL,
  vers {i64} NOT NULL,
  proc {i64} NOT NULL,
  priv {text} NOT NULL,
  mon_name {text} NOT NULL,
  my_name {text} NOT NULL,
  raw {text} NOT NULL,
  PRIMARY KEY (node, file_name, line_no)
))",
           "CREATE INDEX monitor_records_by_mon_name ON monitor_records (mon_name)",
           R"(CREATE TABLE lock_records (
  node {text} NOT NULL REFERENCES nodes (node),
  seq integer NOT NULL,
  epoch {u64} NOT NULL,
  manager_comm {text} NOT NULL,
  manager_pid {i64} NOT NULL,
  dev {u64} NOT NULL,
  ino {u64} NOT NULL,
  path {text} NOT NULL,
  range_start {u64} NOT NULL,
  range_end {u64} NOT NULL,
  lock_type {text} NOT NULL CHECK (lock_type IN ('read', 'write')),
  lock_owner {u64} NOT NULL,
  owner_pid {i64} NOT NULL,
  granted_ns {i64} NOT NULL,
  nlm_host {text} NOT NULL,
  PRIMARY KEY (node, seq)
))",
           "CREATE INDEX lock_records_by_file ON lock_records (dev, ino)",
           R"(CREATE TABLE migrations (
  from_node {text} NOT NULL,
  epoch {u64} NOT NULL,
  to_node {text} NOT NULL,
  started_ns {i64} NOT NULL,
  finished_ns {i64} NOT NULL,
  records {i64} NOT NULL,
  service_ip {text} NOT NULL,
  recognize_method {text} NOT NULL,
  result {text} NOT NULL,
  PRIMARY KEY (from_node, epoch)
))",
           "CREATE INDEX migrations_by_started ON migrations (started_ns)",
           "CREATE INDEX migrations_by_to_node ON migrations (to_node)",
       }},
      // Who fenced a node is part of the fence: bump_epoch sets epoch and adopter in one UPDATE.
      // Epochs set before this version keep '' (failover::migrate asks the migrations table).
      {2,
       "the adopter that set each node's fencing epoch",
       {
           "ALTER TABLE nodes ADD COLUMN adopter {text} NOT NULL DEFAULT ''",
       }},
      // Kernel lockd's per-service-IP attribution (LockRecord::client_addr, server_addr).
      {3,
       "the NLM client's address and the server address each lock came through",
       {
           "ALTER TABLE lock_records ADD COLUMN client_addr {text} NOT NULL DEFAULT ''",
           "ALTER TABLE lock_records ADD COLUMN server_addr {text} NOT NULL DEFAULT ''",
       }},
  };
  return migrations;
}

// An arbitrary constant: the advisory lock that serialises schema migrations of several
// lockferry processes starting at once against one PostgreSQL database.
constexpr std::int64_t kSchemaLockKey = 0x6c6b6672;  // "lkfr"
// Rows per multi-row INSERT of a lock table (17 parameters each).
constexpr std::size_t kLockRowsPerInsert = 100;
constexpr std::size_t kLockColumns = 17;

std::string expand_types(std::string_view sql, SqlDialect dialect) {
  const bool pg = dialect == SqlDialect::kPostgres;
  std::string out;
  out.reserve(sql.size() + 64);
  for (std::size_t i = 0; i < sql.size();) {
    auto replace = [&](std::string_view token, std::string_view with) {
      if (sql.substr(i, token.size()) != token) return false;
      out += with;
      i += token.size();
      return true;
    };
    if (replace("{u64}", pg ? "numeric(20,0)" : "INTEGER") ||
        replace("{i64}", pg ? "bigint" : "INTEGER") ||
        replace("{text}", pg ? "text COLLATE \"C\"" : "TEXT")) {
      continue;
    }
    out += sql[i++];
  }
  return out;
}

// Locks the node's row for the rest of the transaction and returns its epoch (0 for a node
// without a row). With `create`, the row is created first so the lock always has a target.
Result<std::uint64_t> lock_node(SqlDatabase& db, std::string_view node, bool create) {
  const std::string name(node);
  if (create) {
    auto inserted = db.query(
        "INSERT INTO nodes (node, epoch, epoch_changed_ns) VALUES ($1, 0, 0) "
        "ON CONFLICT (node) DO NOTHING",
        {name});
    if (!inserted) return inserted.error();
  }
  // SQLite has no row locks; its write transactions (BEGIN IMMEDIATE) hold the database's one
  // write lock from the start, which serialises them the same way.
  auto rows = db.query(db.dialect() == SqlDialect::kPostgres
                           ? "SELECT epoch FROM nodes WHERE node = $1 FOR UPDATE"
                           : "SELECT epoch FROM nodes WHERE node = $1",
                       {name});
  if (!rows) return rows.error();
  if (rows->empty()) return std::uint64_t{0};
  return column_u64(rows->front().at(0));
}

Result<MonitorRecord> monitor_from_row(const SqlRow& row) {
  // node, file_name, line_no, epoch, first_seen_ns, last_seen_ns, addr, prog, vers, proc, priv,
  // mon_name, my_name, raw
  MonitorRecord r;
  r.node = row.at(0);
  r.file_name = row.at(1);
  auto epoch = column_u64(row.at(3));
  auto first = column_i64(row.at(4));
  auto last = column_i64(row.at(5));
  if (!epoch) return epoch.error();
  if (!first) return first.error();
  if (!last) return last.error();
  r.epoch = *epoch;
  r.first_seen_ns = *first;
  r.last_seen_ns = *last;
  std::uint32_t* u32[] = {&r.addr, &r.prog, &r.vers, &r.proc};
  for (int i = 0; i < 4; ++i) {
    auto v = column_i64(row.at(6 + i));
    if (!v) return v.error();
    if (*v < 0 || *v > UINT32_MAX) return make_error("column {} is out of range: {}", 6 + i, *v);
    *u32[i] = static_cast<std::uint32_t>(*v);
  }
  auto priv = statmon::priv_from_hex(row.at(10));
  if (!priv) return make_error("priv {}", priv.error().message);
  r.priv = *priv;
  r.mon_name = row.at(11);
  r.my_name = row.at(12);
  r.raw = row.at(13);
  // The raw line is what replay writes; it must be exactly what the fields say.
  if (r.raw.empty()) return make_error("raw line is missing");
  if (auto ok = statmon::check_record(r); !ok) return ok.error();
  return r;
}

std::vector<SqlValue> monitor_params(const MonitorRecord& r, std::int64_t line) {
  return {r.node,
          r.file_name,
          line,
          r.epoch,
          r.first_seen_ns,
          r.last_seen_ns,
          static_cast<std::int64_t>(r.addr),
          static_cast<std::int64_t>(r.prog),
          static_cast<std::int64_t>(r.vers),
          static_cast<std::int64_t>(r.proc),
          statmon::priv_to_hex(r.priv),
          r.mon_name,
          r.my_name,
          r.raw.empty() ? statmon::format_record(r) : r.raw};
}

Result<LockRecord> lock_from_row(const SqlRow& row) {
  // node, seq, epoch, manager_comm, manager_pid, dev, ino, path, range_start, range_end,
  // lock_type, lock_owner, owner_pid, granted_ns, nlm_host, client_addr, server_addr
  LockRecord l;
  l.node = row.at(0);
  for (auto [col, field] :
       {std::pair{2, &l.epoch}, std::pair{5, &l.dev}, std::pair{6, &l.ino}, std::pair{8, &l.start},
        std::pair{9, &l.end}, std::pair{11, &l.owner}}) {
    auto v = column_u64(row.at(col));
    if (!v) return make_error("column {}: {}", col, v.error().message);
    *field = *v;
  }
  l.manager_comm = row.at(3);
  auto pid = column_i64(row.at(4));
  auto owner_pid = column_i64(row.at(12));
  auto granted = column_i64(row.at(13));
  if (!pid) return pid.error();
  if (!owner_pid) return owner_pid.error();
  if (!granted) return granted.error();
  if (*pid < 0 || *pid > UINT32_MAX) return make_error("manager_pid {} is out of range", *pid);
  if (*owner_pid < INT32_MIN || *owner_pid > INT32_MAX)
    return make_error("owner_pid {} is out of range", *owner_pid);
  l.manager_pid = static_cast<std::uint32_t>(*pid);
  l.path = row.at(7);
  l.type = row.at(10);
  l.owner_pid = static_cast<std::int32_t>(*owner_pid);
  l.granted_ns = *granted;
  l.nlm_host = row.at(14);
  l.client_addr = row.at(15);
  l.server_addr = row.at(16);
  if (auto ok = check_lock(l); !ok) return ok.error();
  return l;
}

Result<MigrationRecord> migration_from_row(const SqlRow& row) {
  // from_node, epoch, to_node, started_ns, finished_ns, records, service_ip, recognize_method,
  // result
  MigrationRecord m;
  m.from_node = row.at(0);
  auto epoch = column_u64(row.at(1));
  auto started = column_i64(row.at(3));
  auto finished = column_i64(row.at(4));
  auto records = column_i64(row.at(5));
  if (!epoch) return epoch.error();
  if (!started) return started.error();
  if (!finished) return finished.error();
  if (!records) return records.error();
  if (*records < 0) return make_error("records {} is negative", *records);
  m.epoch = *epoch;
  m.to_node = row.at(2);
  m.started_ns = *started;
  m.finished_ns = *finished;
  m.records = static_cast<std::size_t>(*records);
  m.service_ip = row.at(6);
  m.recognize_method = row.at(7);
  m.result = row.at(8);
  return m;
}

}  // namespace

Result<std::uint64_t> column_u64(const std::string& text) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  if (!text.empty() && text.front() == '-') {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(begin, end, v);
    if (ec == std::errc() && p == end) return static_cast<std::uint64_t>(v);
  } else {
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(begin, end, v);
    if (ec == std::errc() && p == end && !text.empty()) return v;
  }
  return make_error("'{}' is not a 64-bit number", statmon::printable(text));
}

Result<std::int64_t> column_i64(const std::string& text) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc() && p == text.data() + text.size() && !text.empty()) return v;
  return make_error("'{}' is not a 64-bit integer", statmon::printable(text));
}

int SqlStore::schema_version() { return schema_migrations().back().version; }

Result<void> SqlStore::transaction(bool write,
                                   const std::function<Result<void>(SqlDatabase&)>& body) {
  auto db = database();
  if (!db) return db.error();
  SqlDatabase& d = **db;
  auto lost = [this](const Result<void>& r) {
    if (!r && r.error().code == kErrUnreachable) connection_lost();
    return r;
  };
  if (auto ok = d.begin(write); !ok) return lost(ok);
  auto result = body(d);
  if (!result) {
    if (result.error().code != kErrUnreachable) d.rollback();
    return lost(result);
  }
  return lost(d.commit());
}

Result<void> SqlStore::migrate_schema(SqlDatabase& db, std::string_view where) {
  if (auto ok = db.begin(true); !ok) return ok;
  auto body = [&]() -> Result<void> {
    const bool pg = db.dialect() == SqlDialect::kPostgres;
    if (pg) {
      auto locked = db.query("SELECT pg_advisory_xact_lock($1)", {kSchemaLockKey});
      if (!locked) return locked.error();
    }
    auto created = db.query(
        "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
        "description text NOT NULL, applied_ns bigint NOT NULL)");
    if (!created) return created.error();
    auto rows = db.query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
    if (!rows) return rows.error();
    auto current = column_i64(rows->at(0).at(0));
    if (!current) return make_error("{}: schema_version: {}", where, current.error().message);
    if (*current > schema_version()) {
      return Error{fmt::format("{}: the database schema is version {}, newer than this lockferry "
                               "{} understands (version {}): upgrade lockferry on this node, or "
                               "point it at another database",
                               where, *current, LOCKFERRY_VERSION, schema_version()),
                   kErrSchemaNewer};
    }
    for (const auto& m : schema_migrations()) {
      if (m.version <= *current) continue;
      for (auto statement : m.statements) {
        auto done = db.query(expand_types(statement, db.dialect()));
        if (!done)
          return make_error("{}: schema migration {} ({}) failed: {}", where, m.version,
                            m.description, done.error().message);
      }
      auto noted = db.query(
          "INSERT INTO schema_version (version, description, applied_ns) VALUES ($1, $2, $3)",
          {std::int64_t{m.version}, std::string(m.description), clock::now_ns()});
      if (!noted) return noted.error();
      spdlog::info("{}: applied schema migration {} ({})", where, m.version, m.description);
    }
    return {};
  };
  auto result = body();
  if (!result) {
    if (result.error().code != kErrUnreachable) db.rollback();
    return result;
  }
  return db.commit();
}

Result<void> SqlStore::check_monitor_file(const std::vector<MonitorRecord>& records) {
  if (records.empty()) return make_error("put_monitor_file needs at least one record");
  const MonitorRecord& first = records.front();
  if (auto ok = check_node_name(first.node); !ok) return ok.error();
  if (auto ok = check_stored_file_name(first.file_name); !ok) return ok.error();
  for (const auto& r : records) {
    if (r.node != first.node || r.file_name != first.file_name || r.epoch != first.epoch) {
      return make_error("records of monitor file '{}' must share node, file name and epoch",
                        statmon::printable(first.file_name));
    }
    if (auto ok = statmon::check_record(r); !ok) return ok.error();
  }
  return {};
}

Result<void> SqlStore::check_delete(std::string_view node, std::string_view file_name) {
  if (auto ok = check_node_name(node); !ok) return ok.error();
  return check_stored_file_name(file_name);
}

Result<void> SqlStore::check_lock_table(std::string_view node, std::uint64_t epoch,
                                        const std::vector<LockRecord>& locks) {
  return store::check_lock_table(node, epoch, locks);
}

Result<void> SqlStore::put_monitor(const MonitorRecord& record) {
  return put_monitor_file({record});
}

Result<void> SqlStore::put_monitor_file(const std::vector<MonitorRecord>& records) {
  if (auto ok = check_monitor_file(records); !ok) return ok;
  return write_monitor_file(records);
}

Result<void> SqlStore::write_monitor_file(const std::vector<MonitorRecord>& records) {
  const MonitorRecord& first = records.front();
  return transaction(true, [&](SqlDatabase& db) -> Result<void> {
    auto current = lock_node(db, first.node, true);
    if (!current) return current.error();
    if (first.epoch < *current) {
      return fenced(
          first.node, *current, first.epoch,
          fmt::format("writing monitor record '{}'", statmon::printable(first.file_name)));
    }
    auto gone = db.query("DELETE FROM monitor_records WHERE node = $1 AND file_name = $2",
                         {first.node, first.file_name});
    if (!gone) return gone.error();
    for (std::size_t i = 0; i < records.size(); ++i) {
      auto put = db.query(
          "INSERT INTO monitor_records (node, file_name, line_no, epoch, first_seen_ns, "
          "last_seen_ns, addr, prog, vers, proc, priv, mon_name, my_name, raw) VALUES ($1, $2, "
          "$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
          monitor_params(records[i], static_cast<std::int64_t>(i)));
      if (!put) return put.error();
    }
    return {};
  });
}

Result<void> SqlStore::delete_monitor(std::string_view node, std::string_view file_name,
                                      std::uint64_t epoch) {
  if (auto ok = check_delete(node, file_name); !ok) return ok;
  return write_delete(node, file_name, epoch);
}

Result<void> SqlStore::write_delete(std::string_view node, std::string_view file_name,
                                    std::uint64_t epoch) {
  return transaction(true, [&](SqlDatabase& db) -> Result<void> {
    // No row is created for a node that has none: deleting from an unknown node changes nothing.
    auto current = lock_node(db, node, false);
    if (!current) return current.error();
    if (epoch < *current) {
      return fenced(node, *current, epoch,
                    fmt::format("deleting monitor record '{}'", statmon::printable(file_name)));
    }
    auto gone = db.query("DELETE FROM monitor_records WHERE node = $1 AND file_name = $2",
                         {std::string(node), std::string(file_name)});
    if (!gone) return gone.error();
    return {};
  });
}

Result<std::vector<MonitorRecord>> SqlStore::list_monitor(std::string_view node) {
  if (auto ok = check_node_name(node); !ok) return ok.error();
  std::vector<SqlRow> rows;
  auto read = transaction(false, [&](SqlDatabase& db) -> Result<void> {
    auto r = db.query(
        "SELECT node, file_name, line_no, epoch, first_seen_ns, last_seen_ns, addr, prog, vers, "
        "proc, priv, mon_name, my_name, raw FROM monitor_records WHERE node = $1 "
        "ORDER BY file_name, line_no",
        {std::string(node)});
    if (!r) return r.error();
    rows = std::move(*r);
    return {};
  });
  if (!read) return read.error();

  // Lines of one file are replayed together, so a corrupt line skips its whole file.
  std::vector<MonitorRecord> out;
  for (std::size_t i = 0; i < rows.size();) {
    const std::string file_name = rows[i].at(1);
    std::vector<MonitorRecord> file;
    std::string problem;
    for (; i < rows.size() && rows[i].at(1) == file_name; ++i) {
      if (!problem.empty()) continue;
      auto line = column_i64(rows[i].at(2));
      if (!line || *line != static_cast<std::int64_t>(file.size())) {
        problem = fmt::format("line {} is missing", file.size());
        continue;
      }
      auto r = monitor_from_row(rows[i]);
      if (!r)
        problem = fmt::format("line {}: {}", file.size(), r.error().message);
      else
        file.push_back(std::move(*r));
    }
    if (!problem.empty()) {
      spdlog::warn("store {}: skipping corrupt monitor record of node '{}' file '{}': {}", url(),
                   statmon::printable(node), statmon::printable(file_name), problem);
      continue;
    }
    for (auto& r : file) out.push_back(std::move(r));
  }
  return out;
}

Result<void> SqlStore::put_locks(std::string_view node, std::uint64_t epoch,
                                 const std::vector<LockRecord>& locks) {
  if (auto ok = check_lock_table(node, epoch, locks); !ok) return ok;
  return write_locks(node, epoch, locks);
}

namespace {

// Inserts `locks` as rows seq, seq+1, ... of the node's table, in multi-row INSERTs.
Result<void> insert_locks(SqlDatabase& db, const std::string& node, std::int64_t seq,
                          const std::vector<LockRecord>& locks) {
  for (std::size_t first = 0; first < locks.size(); first += kLockRowsPerInsert) {
    const std::size_t n = std::min(kLockRowsPerInsert, locks.size() - first);
    std::string sql =
        "INSERT INTO lock_records (node, seq, epoch, manager_comm, manager_pid, dev, ino, path, "
        "range_start, range_end, lock_type, lock_owner, owner_pid, granted_ns, nlm_host, "
        "client_addr, server_addr) VALUES ";
    std::vector<SqlValue> params;
    params.reserve(n * kLockColumns);
    for (std::size_t k = 0; k < n; ++k) {
      const LockRecord& l = locks[first + k];
      sql += k == 0 ? "(" : ", (";
      for (std::size_t c = 1; c <= kLockColumns; ++c)
        sql += fmt::format("${}{}", params.size() + c, c == kLockColumns ? ")" : ", ");
      params.insert(
          params.end(),
          {node, seq + static_cast<std::int64_t>(first + k), l.epoch,
           text::valid_utf8(l.manager_comm), static_cast<std::int64_t>(l.manager_pid), l.dev, l.ino,
           text::valid_utf8(l.path), l.start, l.end, l.type, l.owner,
           static_cast<std::int64_t>(l.owner_pid), l.granted_ns, text::valid_utf8(l.nlm_host),
           text::valid_utf8(l.client_addr), text::valid_utf8(l.server_addr)});
    }
    auto put = db.query(sql, params);
    if (!put) return put.error();
  }
  return {};
}

}  // namespace

Result<void> SqlStore::write_locks(std::string_view node, std::uint64_t epoch,
                                   const std::vector<LockRecord>& locks) {
  const std::string name(node);
  return transaction(true, [&](SqlDatabase& db) -> Result<void> {
    auto current = lock_node(db, node, true);
    if (!current) return current.error();
    if (epoch < *current) return fenced(node, *current, epoch, "writing the lock table");
    auto gone = db.query("DELETE FROM lock_records WHERE node = $1", {name});
    if (!gone) return gone.error();
    return insert_locks(db, name, 0, locks);
  });
}

Result<void> SqlStore::update_locks(std::string_view node, std::uint64_t epoch,
                                    const LockDelta& delta) {
  if (auto ok = check_lock_table(node, epoch, delta.put); !ok) return ok;
  return write_lock_delta(node, epoch, delta);
}

Result<void> SqlStore::write_lock_delta(std::string_view node, std::uint64_t epoch,
                                        const LockDelta& delta) {
  const std::string name(node);
  return transaction(true, [&](SqlDatabase& db) -> Result<void> {
    auto current = lock_node(db, node, true);
    if (!current) return current.error();
    if (epoch < *current) return fenced(node, *current, epoch, "writing the lock table");
    // Removed and replaced ranges leave by key (found through lock_records_by_file); the put
    // ones are appended after the last row, as apply_lock_delta orders them.
    auto remove = [&](const LockKey& k) -> Result<void> {
      auto gone = db.query(
          "DELETE FROM lock_records WHERE node = $1 AND dev = $2 AND ino = $3 AND "
          "lock_owner = $4 AND range_start = $5",
          {name, k.dev, k.ino, k.owner, k.start});
      if (!gone) return gone.error();
      return {};
    };
    for (const auto& k : delta.removed)
      if (auto ok = remove(k); !ok) return ok;
    for (const auto& l : delta.put)
      if (auto ok = remove(key_of(l)); !ok) return ok;
    if (delta.put.empty()) return {};
    auto last = db.query("SELECT COALESCE(MAX(seq), -1) FROM lock_records WHERE node = $1", {name});
    if (!last) return last.error();
    auto seq = column_i64(last->at(0).at(0));
    if (!seq) return seq.error();
    return insert_locks(db, name, *seq + 1, delta.put);
  });
}

Result<std::vector<LockRecord>> SqlStore::list_locks(std::string_view node) {
  if (auto ok = check_node_name(node); !ok) return ok.error();
  std::vector<SqlRow> rows;
  auto read = transaction(false, [&](SqlDatabase& db) -> Result<void> {
    auto r = db.query(
        "SELECT node, seq, epoch, manager_comm, manager_pid, dev, ino, path, range_start, "
        "range_end, lock_type, lock_owner, owner_pid, granted_ns, nlm_host, client_addr, "
        "server_addr FROM lock_records "
        "WHERE node = $1 ORDER BY seq",
        {std::string(node)});
    if (!r) return r.error();
    rows = std::move(*r);
    return {};
  });
  if (!read) return read.error();
  std::vector<LockRecord> out;
  for (const auto& row : rows) {
    auto l = lock_from_row(row);
    if (!l)
      return make_error("store {}: lock table of node '{}', row seq {}: {}", url(),
                        statmon::printable(node), row.at(1), l.error().message);
    out.push_back(std::move(*l));
  }
  // Not ORDER BY: SQLite keeps uint64 values above 2^63 as negative integers.
  sort_locks(out);
  return out;
}

Result<std::vector<std::string>> SqlStore::list_nodes() {
  std::vector<std::string> nodes;
  auto read = transaction(false, [&](SqlDatabase& db) -> Result<void> {
    auto rows = db.query("SELECT node FROM nodes ORDER BY node");
    if (!rows) return rows.error();
    for (const auto& row : *rows) {
      if (check_node_name(row.at(0))) nodes.push_back(row.at(0));  // strays written by hand
    }
    return {};
  });
  if (!read) return read.error();
  return nodes;
}

Result<std::uint64_t> SqlStore::epoch(std::string_view node) {
  if (auto ok = check_node_name(node); !ok) return ok.error();
  std::uint64_t current = 0;
  auto read = transaction(false, [&](SqlDatabase& db) -> Result<void> {
    auto rows = db.query("SELECT epoch FROM nodes WHERE node = $1", {std::string(node)});
    if (!rows) return rows.error();
    if (rows->empty()) return {};
    auto v = column_u64(rows->front().at(0));
    if (!v) return make_error("store {}: epoch of node '{}': {}", url(), node, v.error().message);
    current = *v;
    return {};
  });
  if (!read) return read.error();
  return current;
}

Result<Fence> SqlStore::fence(std::string_view node) {
  if (auto ok = check_node_name(node); !ok) return ok.error();
  Fence current;
  auto read = transaction(false, [&](SqlDatabase& db) -> Result<void> {
    auto rows = db.query("SELECT epoch, adopter FROM nodes WHERE node = $1", {std::string(node)});
    if (!rows) return rows.error();
    if (rows->empty()) return {};
    auto v = column_u64(rows->front().at(0));
    if (!v) return make_error("store {}: epoch of node '{}': {}", url(), node, v.error().message);
    current = Fence{*v, rows->front().at(1)};
    return {};
  });
  if (!read) return read.error();
  return current;
}

Result<std::uint64_t> SqlStore::bump_epoch(std::string_view node, std::uint64_t expected,
                                           std::string_view adopter) {
  if (auto ok = check_node_name(node); !ok) return ok.error();
  if (!adopter.empty()) {
    if (auto ok = check_node_name(adopter); !ok)
      return make_error("adopter of node '{}': {}", statmon::printable(node), ok.error().message);
  }
  std::uint64_t next = 0;
  auto bumped = transaction(true, [&](SqlDatabase& db) -> Result<void> {
    // The row lock (SQLite: the write lock of BEGIN IMMEDIATE) is held until commit, so the
    // epoch read here and the adopter written with the new one are one atomic step.
    auto current = lock_node(db, node, true);
    if (!current) return current.error();
    if (*current != expected) {
      auto holder = db.query("SELECT adopter FROM nodes WHERE node = $1", {std::string(node)});
      if (!holder) return holder.error();
      return epoch_moved(node, expected, *current,
                         holder->empty() ? std::string() : holder->front().at(0));
    }
    if (expected == UINT64_MAX) return make_error("epoch of node '{}' is exhausted", node);
    next = expected + 1;
    auto updated = db.query(
        "UPDATE nodes SET epoch = $2, adopter = $3, epoch_changed_ns = $4 "
        "WHERE node = $1 AND epoch = $5",
        {std::string(node), next, std::string(adopter), clock::now_ns(), expected});
    if (!updated) return updated.error();
    return {};
  });
  if (!bumped) return bumped.error();
  spdlog::info("store {}: node '{}' is now at fencing epoch {}, adopted by '{}'", url(), node, next,
               statmon::printable(adopter));
  return next;
}

Result<void> SqlStore::put_migration(const MigrationRecord& m) {
  if (auto ok = check_node_name(m.from_node); !ok)
    return make_error("migration: {}", ok.error().message);
  if (auto ok = check_node_name(m.to_node); !ok)
    return make_error("migration: {}", ok.error().message);
  return transaction(true, [&](SqlDatabase& db) -> Result<void> {
    auto put = db.query(
        "INSERT INTO migrations (from_node, epoch, to_node, started_ns, finished_ns, records, "
        "service_ip, recognize_method, result) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (from_node, epoch) DO UPDATE SET to_node = excluded.to_node, "
        "started_ns = excluded.started_ns, finished_ns = excluded.finished_ns, "
        "records = excluded.records, service_ip = excluded.service_ip, "
        "recognize_method = excluded.recognize_method, result = excluded.result",
        {m.from_node, m.epoch, m.to_node, m.started_ns, m.finished_ns,
         static_cast<std::int64_t>(m.records), text::valid_utf8(m.service_ip),
         text::valid_utf8(m.recognize_method), text::valid_utf8(m.result)});
    if (!put) return put.error();
    return {};
  });
}

Result<std::vector<MigrationRecord>> SqlStore::list_migrations() {
  std::vector<MigrationRecord> out;
  auto read = transaction(false, [&](SqlDatabase& db) -> Result<void> {
    auto rows = db.query(
        "SELECT from_node, epoch, to_node, started_ns, finished_ns, records, service_ip, "
        "recognize_method, result FROM migrations ORDER BY started_ns, from_node, epoch");
    if (!rows) return rows.error();
    for (const auto& row : *rows) {
      auto m = migration_from_row(row);
      if (!m) {
        spdlog::warn("store {}: skipping corrupt migration record {}-{}: {}", url(),
                     statmon::printable(row.at(0)), statmon::printable(row.at(1)),
                     m.error().message);
        continue;
      }
      out.push_back(std::move(*m));
    }
    return {};
  });
  if (!read) return read.error();
  return out;
}

}  // namespace lockferry::store
