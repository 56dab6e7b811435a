// SPDX-License-Identifier: Apache-2.0
// sqlite:// store: SqlDatabase over the SQLite C API, and the local-filesystem check.
#include "store/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <thread>

#include "common/files.h"
#include "common/trusted_dirs.h"

namespace lockferry::store {
namespace {

constexpr int kBusyTimeoutMs = 10'000;
constexpr mode_t kDirMode = 0750;
constexpr mode_t kFileMode = 0640;

// statfs f_type values (linux/magic.h and the filesystems' own headers).
struct UnsafeFilesystem {
  unsigned long magic;
  std::string_view name;
};
constexpr UnsafeFilesystem kUnsafeFilesystems[] = {
    {0x6969, "NFS"},
    {0x517B, "SMB"},
    {0xFF534D42, "CIFS"},
    {0xFE534D42, "SMB2"},
    {0x65735546, "FUSE"},
    {0x00C36400, "Ceph"},
    {0x73757245, "Coda"},
    {0x5346414F, "AFS"},
    {0x6B414653, "kAFS"},
    {0x01021997, "9P"},
    {0x01161970, "GFS2"},
    {0x7461636F, "OCFS2"},
    {0x0BD00BD0, "Lustre"},
    {0x564C, "NCP"},
    {0x20030528, "OrangeFS"},
    {0x47504653, "GPFS"},
    {0x786F4256, "VirtualBox shared folder"},
};

// "$12" -> "?12": the queries are written once, with PostgreSQL's placeholders.
std::string sqlite_placeholders(std::string_view sql) {
  std::string out(sql);
  for (auto& c : out) {
    if (c == '$') c = '?';
  }
  return out;
}

}  // namespace

class SqliteDatabase final : public SqlDatabase {
 public:
  explicit SqliteDatabase(std::string path) : path_(std::move(path)) {}
  ~SqliteDatabase() override {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    if (db_ != nullptr) sqlite3_close(db_);
  }
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

  Result<void> open() {
    const int rc =
        sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) return error("cannot open", rc);
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    auto mode = switch_to_wal();
    if (!mode) return mode.error();
    if (*mode != "wal") {
      return make_error("sqlite store {}: cannot switch to WAL mode (journal_mode is '{}')", path_,
                        *mode);
    }
    // FULL: a commit is on disk when put returns (NORMAL could lose the last ones on power loss).
    for (const char* pragma : {"PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON"}) {
      if (auto ok = query(pragma); !ok) return ok.error();
    }
    return {};
  }

  SqlDialect dialect() const override { return SqlDialect::kSqlite; }

  Result<void> begin(bool write) override {
    // IMMEDIATE takes the write lock now: a deferred transaction that reads first and then
    // writes can fail with SQLITE_BUSY instead of waiting, and it makes the fencing check and
    // the write one atomic step against every other writer process.
    auto r = query(write ? "BEGIN IMMEDIATE" : "BEGIN");
    if (!r) return r.error();
    return {};
  }
  Result<void> commit() override {
    auto r = query("COMMIT");
    if (!r) {
      rollback();
      return r.error();
    }
    return {};
  }
  void rollback() override {
    if (sqlite3_get_autocommit(db_) == 0) (void)query("ROLLBACK");
  }

  Result<std::vector<SqlRow>> query(std::string_view sql,
                                    const std::vector<SqlValue>& params = {}) override {
    auto stmt = prepare(sql);
    if (!stmt) return stmt.error();
    sqlite3_stmt* s = *stmt;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i) + 1;
      int rc = SQLITE_OK;
      if (const auto* v = std::get_if<std::int64_t>(&params[i])) {
        rc = sqlite3_bind_int64(s, index, *v);
      } else if (const auto* u = std::get_if<std::uint64_t>(&params[i])) {
        // INTEGER is signed: values above 2^63-1 are kept as their two's complement.
        rc = sqlite3_bind_int64(s, index, static_cast<sqlite3_int64>(*u));
      } else {
        const auto& text = std::get<std::string>(params[i]);
        rc = sqlite3_bind_text(s, index, text.data(), static_cast<int>(text.size()),
                               SQLITE_TRANSIENT);
      }
      if (rc != SQLITE_OK) return error("cannot bind a parameter", rc);
    }
    std::vector<SqlRow> rows;
    for (;;) {
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return error(rc == SQLITE_BUSY || (rc & 0xFF) == SQLITE_BUSY
                         ? "another process held the database locked for too long"
                         : "statement failed",
                     rc);
      }
      SqlRow row;
      const int n = sqlite3_column_count(s);
      for (int c = 0; c < n; ++c) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
        const int bytes = sqlite3_column_bytes(s, c);
        row.emplace_back(text == nullptr ? std::string() : std::string(text, bytes));
      }
      rows.push_back(std::move(row));
    }
    sqlite3_reset(s);
    return rows;
  }

 private:
  Result<sqlite3_stmt*> prepare(std::string_view sql) {
    const std::string text = sqlite_placeholders(sql);
    if (auto it = statements_.find(text); it != statements_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    const int rc =
        sqlite3_prepare_v2(db_, text.c_str(), static_cast<int>(text.size()), &stmt, nullptr);
    if (rc != SQLITE_OK) return error("cannot prepare a statement", rc);
    statements_.emplace(text, stmt);
    return stmt;
  }

  // Switching a new database to WAL takes an exclusive lock, and when several processes open a
  // new store at once SQLite answers SQLITE_BUSY at once instead of calling the busy handler
  // (waiting could deadlock there). So wait here, as the busy handler would, up to its timeout.
  Result<std::string> switch_to_wal() {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
    for (;;) {
      std::string mode;
      const int rc = sqlite3_exec(
          db_, "PRAGMA journal_mode = WAL",
          [](void* out, int n, char** values, char**) {
            if (n > 0 && values[0] != nullptr) *static_cast<std::string*>(out) = values[0];
            return 0;
          },
          &mode, nullptr);
      if (rc == SQLITE_OK) return mode;
      if ((rc & 0xFF) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline)
        return error("cannot switch to WAL mode", rc);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  Error error(std::string_view what, int rc) const {
    const char* detail = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    return make_error("sqlite store {}: {}: {} ({})", path_, what, detail, sqlite3_errstr(rc));
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  std::map<std::string, sqlite3_stmt*, std::less<>> statements_;
};

std::string_view unsafe_filesystem_name(unsigned long f_type) {
  for (const auto& fs : kUnsafeFilesystems) {
    if (fs.magic == (f_type & 0xFFFFFFFFul)) return fs.name;
  }
  return {};
}

Result<void> check_local_filesystem(const std::string& dir) {
  struct statfs st {};
  if (::statfs(dir.c_str(), &st) != 0) {
    return make_errno_error(errno, "sqlite store: cannot check the filesystem of {} ({})", dir,
                            files::errno_name(errno));
  }
  auto name = unsafe_filesystem_name(static_cast<unsigned long>(st.f_type));
  if (!name.empty()) {
    return make_error(
        "sqlite store: {} is on a {} filesystem, where SQLite's file locking and WAL shared "
        "memory are not safe (the database could be corrupted). Put the sqlite:// database on "
        "a local disk; to share a store between nodes use postgresql:// or dir:// instead",
        dir, name);
  }
  return {};
}

SqliteStore::SqliteStore(std::string path, std::unique_ptr<SqliteDatabase> db)
    : path_(std::move(path)), db_(std::move(db)) {}

SqliteStore::~SqliteStore() = default;

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  if (path.empty() || path.front() != '/' || path.back() == '/') {
    return make_error("sqlite:// store '{}' must be an absolute path to a database file", path);
  }
  const std::string dir = path.substr(0, std::max<std::size_t>(path.rfind('/'), 1));
  // SQLite opens the database and its -wal and -shm files by name, as root: the directory and
  // its parents must be root's and the database no link (trusted_dirs.h), or whoever could write
  // there could plant links that make root write elsewhere.
  auto dirfd = files::create_trusted_directory(dir, kDirMode);
  if (!dirfd) return make_error("cannot open sqlite:// store: {}", dirfd.error().message);
  // The directory holds the -wal and -shm files too, so it is what must be local.
  if (auto ok = check_local_filesystem(dir); !ok) return ok.error();
  const std::string base = path.substr(path.rfind('/') + 1);
  files::Fd fd(
      ::openat(dirfd->get(), base.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, kFileMode));
  if (fd.get() < 0) {
    if (errno == ELOOP)
      return make_error("cannot open sqlite:// store {}: it is a symbolic link; use the real path",
                        path);
    return make_errno_error(errno, "cannot open sqlite:// store {} ({})", path,
                            files::errno_name(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return make_errno_error(errno, "cannot stat sqlite:// store {}", path);
  if (auto ok = files::check_trusted_file(st, path); !ok)
    return make_error("cannot open sqlite:// store: {}", ok.error().message);
  fd.close();
  if (auto ok = check_local_filesystem(path); !ok) return ok.error();

  auto db = std::make_unique<SqliteDatabase>(path);
  if (auto ok = db->open(); !ok) return ok.error();
  if (auto ok = migrate_schema(*db, "sqlite store " + path); !ok) return ok.error();
  return std::unique_ptr<SqliteStore>(new SqliteStore(path, std::move(db)));
}

std::string SqliteStore::url() const { return "sqlite://" + path_; }

Result<SqlDatabase*> SqliteStore::database() { return static_cast<SqlDatabase*>(db_.get()); }

}  // namespace lockferry::store
