// SPDX-License-Identifier: Apache-2.0
// The Store interface: where monitor records, fencing epochs and migrations live, chosen by URL.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lockferry/records.h"
#include "lockferry/result.h"
#include "store/lock_delta.h"

namespace lockferry::store {

// Who adopted whom. Recorded so a second adoptive node does not replay the same node again and a
// returning primary learns it was taken over.
struct MigrationRecord {
  std::string from_node;         // the node that was adopted (the old primary)
  std::string to_node;           // the adoptive node
  std::uint64_t epoch = 0;       // from_node's fencing epoch after the adoption
  std::int64_t started_ns = 0;   // CLOCK_REALTIME
  std::int64_t finished_ns = 0;  // 0 while still running
  std::size_t records = 0;       // monitor records replayed
  std::string service_ip;
  std::string recognize_method;
  std::string result;  // "ok", or what went wrong

  bool operator==(const MigrationRecord&) const = default;
};

// Who fenced a node. The adoptive node is stored with the epoch by the same atomic step that
// sets the epoch, so an adopter that finds an epoch always finds who set it: a second adopter
// racing the first (issue 12: both read the epoch, one bumps, the other finds no migration
// record yet and bumps again) sees the winner's name instead of an unclaimed epoch.
struct Fence {
  std::uint64_t epoch = 0;  // 0: never adopted
  // The node that set `epoch` by adopting this one; empty at epoch 0 and for an epoch set by a
  // lockferry older than this field (failover::migrate then asks the migration records).
  std::string adopter;

  bool operator==(const Fence&) const = default;
};

// Fencing: every node has an epoch in the store, starting at 0 for a node never adopted. Writes
// carry the writer's epoch; a write with an epoch older than the node's current one is refused
// (ErrFenced), so a primary that was only partitioned and comes back after being adopted cannot
// overwrite what the adoptive node now owns.
inline constexpr int kErrFenced = 1001;
// A write the store could not commit because its database is unreachable right now; it is kept
// in the store's in-memory backlog and written, in order, once the database is back. It is NOT
// acknowledged: the backlog is lost if the process exits first (see docs/stores.md).
inline constexpr int kErrQueued = 1002;

class Store {
 public:
  virtual ~Store() = default;

  // The URL this store was opened with (for logs and `lockferry status`), password hidden.
  virtual std::string url() const = 0;

  // Writes waiting in memory for an unreachable database (kErrQueued); 0 for stores that never
  // queue (dir://, sqlite://). Shown by `lockferry status`.
  virtual std::size_t backlog() const { return 0; }

  // Insert or replace one monitor record of record.node, keyed by record.file_name.
  // Refused with code kErrFenced when record.epoch < current epoch of record.node.
  virtual Result<void> put_monitor(const MonitorRecord& record) = 0;

  // Insert or replace every record of one monitor file at once: a statd file holds several
  // lines when several (mon_name, my_name) pairs map to it (see statmon/record.h), and they must
  // be stored and replayed together. All records share node, file_name and epoch; an empty
  // vector is refused (use delete_monitor). list_monitor returns them in the same order.
  // Backends that keep one record per file accept exactly one record here.
  virtual Result<void> put_monitor_file(const std::vector<MonitorRecord>& records) {
    if (records.size() == 1) return put_monitor(records.front());
    return make_error("store {} keeps one record per monitor file; '{}' holds {}", url(),
                      records.empty() ? std::string() : records.front().file_name, records.size());
  }

  // Put several monitor files (each one as put_monitor_file takes it) and return once all of them
  // are durable: what a recorder does when several files changed at once. Backends that can
  // share the cost do (dir://: one sync round and one directory fsync for the batch); the default
  // puts them one by one. Fencing as for put_monitor_file (kErrFenced). On any error nothing is
  // acknowledged: files may already be stored (each whole, old or new) and the caller retries
  // them; dir:// checks every file and every node's epoch before it writes any. An empty batch
  // succeeds.
  virtual Result<void> put_monitor_files(const std::vector<std::vector<MonitorRecord>>& files) {
    for (const auto& records : files) {
      if (auto ok = put_monitor_file(records); !ok) return ok;
    }
    return {};
  }

  // Remove a monitor file's record(s); removing one that is not there succeeds (idempotent).
  // Refused with code kErrFenced when epoch < current epoch of node.
  virtual Result<void> delete_monitor(std::string_view node, std::string_view file_name,
                                      std::uint64_t epoch) = 0;

  // All monitor records of one node, sorted by file_name (lines of one file in file order). A
  // corrupt stored record is skipped, logged with its path, and does not hide the good ones.
  // Replay must write records sharing a file_name into that one file together
  // (statmon::format_record_file), never one after the other over each other.
  virtual Result<std::vector<MonitorRecord>> list_monitor(std::string_view node) = 0;

  // Replace the node's whole lock table (the compacted current state), atomically; refused with
  // kErrFenced when epoch < the node's current epoch.
  virtual Result<void> put_locks(std::string_view node, std::uint64_t epoch,
                                 const std::vector<LockRecord>& locks) = 0;
  // Change the node's lock table by `delta` (lock_delta.h: removed keys, then put ranges) and
  // write only that: what lockferryd does every batch interval. Every put range
  // must be of `node` at `epoch`; ranges the delta does not touch keep the epoch they were
  // written with (or take `epoch` where a backend rewrites the whole table). Atomic like
  // put_locks: a reader sees the table before or after the delta, never part of it. Refused with
  // kErrFenced when epoch < the node's current epoch. Never queued (kErrQueued): a delta means
  // something only on top of what the store holds, so on any error the caller writes the whole
  // table with put_locks. The default reads, applies and puts the whole table.
  virtual Result<void> update_locks(std::string_view node, std::uint64_t epoch,
                                    const LockDelta& delta) {
    auto table = list_locks(node);
    if (!table) return table.error();
    apply_lock_delta(*table, delta);
    for (auto& l : *table) l.epoch = epoch;
    return put_locks(node, epoch, *table);
  }
  // The node's current lock table (empty if none), ordered by (dev, ino, owner, start) (stable:
  // ranges of one key keep their written order); a corrupt table is an error naming the file.
  virtual Result<std::vector<LockRecord>> list_locks(std::string_view node) = 0;

  // Every node that has anything in the store, sorted.
  virtual Result<std::vector<std::string>> list_nodes() = 0;

  // The node's current fencing epoch (0 if never bumped).
  virtual Result<std::uint64_t> epoch(std::string_view node) = 0;

  // The node's current epoch and the adoptive node that set it.
  virtual Result<Fence> fence(std::string_view node) = 0;

  // Compare-and-set: if the node's epoch is `expected`, make it expected+1 set by `adopter`
  // (one atomic step: the epoch never exists without its adopter) and return it; otherwise fail
  // with kErrFenced naming the epoch found and who set it. Exactly one of several callers racing
  // from the same `expected` wins, across processes and nodes; a retry by the winner itself
  // fails like any other (failover::migrate reads the fence first and resumes).
  virtual Result<std::uint64_t> bump_epoch(std::string_view node, std::uint64_t expected,
                                           std::string_view adopter) = 0;

  // Append or update (keyed by from_node + epoch) one migration record, and list them all.
  virtual Result<void> put_migration(const MigrationRecord& migration) = 0;
  virtual Result<std::vector<MigrationRecord>> list_migrations() = 0;
};

// Open a store by URL: dir:///absolute/path (creates the directory if missing; see
// dir_store.h for the layout), sqlite:///absolute/path/file.db (sqlite_store.h), or
// postgresql://... / postgres://... (a libpq URI; pg_store.h). See docs/stores.md.
// Unknown schemes fail with a message listing the supported ones.
// Node names and file names are checked like statd file names (statmon::check_file_name) so
// nothing can escape the store; "migrations" is reserved and not a valid node name.
Result<std::unique_ptr<Store>> open_store(std::string_view url);

}  // namespace lockferry::store
