// SPDX-License-Identifier: Apache-2.0
// sqlite:// store: an embedded SQL database in one file, for one node's local journal and for
// users who want SQL queries on one machine. Not shared between nodes: SQLite's locking (and
// its WAL shared memory) is only safe on a local filesystem, so a path on NFS, SMB/CIFS, FUSE,
// Ceph or another network or cluster filesystem is refused.
//
// The database runs in WAL mode (readers never block the writer) with synchronous=FULL, so a
// put that returned ok is on disk; writers wait up to 10 s (busy timeout) for one another.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "store/sql_store.h"

namespace lockferry::store {

class SqliteDatabase;

class SqliteStore final : public SqlStore {
 public:
  // `path` must be absolute; its directory is created (mode 0750) if missing, the database
  // file (mode 0640) and its schema too.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;

  std::string url() const override;

 protected:
  Result<SqlDatabase*> database() override;

 private:
  SqliteStore(std::string path, std::unique_ptr<SqliteDatabase> db);

  std::string path_;
  std::unique_ptr<SqliteDatabase> db_;
};

// The name of the filesystem with this statfs() f_type when SQLite's locking is unsafe on it
// (network and cluster filesystems, FUSE), else empty.
std::string_view unsafe_filesystem_name(unsigned long f_type);

// Fails, saying why and what to do, when `dir` is on such a filesystem.
Result<void> check_local_filesystem(const std::string& dir);

}  // namespace lockferry::store
