// SPDX-License-Identifier: Apache-2.0
// Reclaim audit: after a migration, compares the locks the old primary held (its lock table in
// the store, frozen by the fence) with the locks the adoptive node's lock manager holds now, and
// says per lock — and per client where the lock table names it — what was reclaimed.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lockferry/records.h"
#include "lockferry/result.h"
#include "store/store.h"

namespace lockferry::failover {

enum class ReclaimStatus {
  reclaimed,        // the same file, range and type is held on the adoptive node
  different_range,  // the file is locked there by the same client, but not with that range/type
  not_reclaimed,    // nothing of it is held there
};
const char* to_string(ReclaimStatus status);

struct AuditedLock {
  LockRecord old_lock;  // as the old primary held it
  ReclaimStatus status = ReclaimStatus::not_reclaimed;
  std::optional<LockRecord> now;  // the matching lock on the adoptive node, if any
  std::string client;             // NLM client when the lock table names it, else ""
  std::string path;               // relative to the export root (what was compared)
};

struct ClientAudit {
  std::size_t locks = 0;
  std::size_t reclaimed = 0;
  std::size_t different_range = 0;
  std::size_t not_reclaimed = 0;
};

struct AuditReport {
  std::string from_node;
  std::string to_node;
  std::size_t locks = 0;  // held by the old primary
  std::size_t reclaimed = 0;
  std::size_t different_range = 0;
  std::size_t not_reclaimed = 0;
  std::vector<AuditedLock> entries;   // in the old table's order
  std::vector<LockRecord> unmatched;  // held on the adoptive node, not from the old primary
  // Per client ("" = locks whose client the lock table does not name, e.g. NFS-Ganesha's).
  std::map<std::string, ClientAudit> clients;
  std::int64_t at_ns = 0;
  // 100 when every lock was reclaimed exactly (also when there was none).
  double percent_reclaimed() const {
    return locks == 0 ? 100.0 : 100.0 * static_cast<double>(reclaimed) / static_cast<double>(locks);
  }
};

struct AuditOptions {
  // Export roots to strip from paths before comparing, when the two servers mount the exported
  // file system at different places ("" = compare the paths as they are). Device and inode
  // numbers are never compared: they differ between servers.
  std::string old_root;
  std::string new_root;
};

// Matches each old lock to the new table: by path (relative to the roots), then client when
// both sides name one (lock owners differ on the new server: new process, new pids), then exact
// range and type. Each new lock explains at most one old lock. Exact matches come first; then an
// old lock of a named client takes that client's first other lock on the file, and any other
// takes the overlapping lock with the smallest start. O(n log n): tables of tens of thousands of
// locks on one file are audited in milliseconds.
AuditReport audit_locks(const std::vector<LockRecord>& old_locks,
                        const std::vector<LockRecord>& new_locks, const AuditOptions& options = {});

// Reads both tables from the store (from_node's is frozen once it was fenced).
Result<AuditReport> audit_from_store(store::Store& store, const std::string& from_node,
                                     const std::string& to_node, const AuditOptions& options = {});

}  // namespace lockferry::failover
