// SPDX-License-Identifier: Apache-2.0
// dir:// store: records as JSON files in a directory tree, shared by nodes over NFS or a
// cluster file system. Safe with many writer processes and nodes without any lock.
//
// Layout under the root:
//   <node>/monitor/<file_name>.json   one document per statd record file (all its lines)
//   <node>/monitor/<start>.<sha256>.longname   the same for a file name of 251-255 bytes, whose
//                                     "<file_name>.json" would not fit NAME_MAX
//   <node>/epochs/<N>                 fencing: the node's epoch is the highest N present; the
//                                     file names the adoptive node that created it
//   <node>/locks.json                 the node's lock table: current state, replaced whole, and
//   <node>/locks.<generation>.log     the changes since, one appended line each (dir_lock_table.h)
//   migrations/<from_node>-<epoch>.json
// Every write goes to a temp file (".<...>.lockferry-tmp.<pid>.<random>", skipped by readers)
// that is fsynced and renamed into place, then the directory is fsynced (put_monitor_files: all
// temp files of the batch are synced before the first rename, and the directory once after the
// last). Epochs are created with link(), which succeeds for exactly one of several racing nodes
// and publishes the epoch together with its adopter (see DirStore::bump_epoch).
// Root writes here while the directory may be shared: the root and every directory beneath it
// are opened without following links and must pass an sshd StrictModes-like check (owned by
// root or this process's user, not writable by group or others; common/trusted_dirs.h), and
// every file is written, read and removed relative to its opened directory.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/files.h"
#include "store/store.h"

namespace lockferry::store {

class DirStore final : public Store {
 public:
  // `root` must be absolute; it is created (mode 0750) if missing.
  static Result<std::unique_ptr<DirStore>> open(const std::string& root);

  std::string url() const override;
  Result<void> put_monitor(const MonitorRecord& record) override;
  Result<void> put_monitor_file(const std::vector<MonitorRecord>& records) override;
  // Group commit: all temp files, one sync round, the renames, one fsync per monitor directory.
  Result<void> put_monitor_files(const std::vector<std::vector<MonitorRecord>>& files) override;
  Result<void> delete_monitor(std::string_view node, std::string_view file_name,
                              std::uint64_t epoch) override;
  Result<std::vector<MonitorRecord>> list_monitor(std::string_view node) override;
  Result<void> put_locks(std::string_view node, std::uint64_t epoch,
                         const std::vector<LockRecord>& locks) override;
  // Appends the delta to the node's journal (one write + fdatasync); rewrites base + journal as
  // a new base when there is no journal of this process's base to append to, or it outgrew it.
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

 private:
  static constexpr mode_t kFileMode = 0640;

  // What this process wrote last as a node's lock-table base, so a delta is appended without
  // reading the base: which base it is (its inode: another writer's base is not ours to extend)
  // and so which journal, and the base's size (a journal that outgrows it is compacted).
  struct LockJournal {
    ino_t base_ino = 0;
    std::string generation;
    std::size_t base_bytes = 0;
  };

  explicit DirStore(std::string root) : root_(std::move(root)) {}

  std::string node_dir(std::string_view node) const;
  // The directory `relative` beneath the root (e.g. "<node>/monitor"), opened link-free and
  // checked (trusted_dirs.h); created when `create`. Missing without `create`: code ENOENT.
  Result<files::Fd> open_dir(std::string_view relative, bool create);
  // Names in the directory `relative` beneath the root, sorted, without "." and "..". A missing
  // directory is empty.
  Result<std::vector<std::string>> list_dir(std::string_view relative);
  // The adopter named in the node's epoch file `epoch` (>= 1).
  Result<std::string> epoch_adopter(std::string_view node, std::uint64_t epoch);
  // Fails with kErrFenced when `epoch` is older than the node's current epoch.
  Result<void> check_not_fenced(std::string_view node, std::uint64_t epoch,
                                std::string_view action);

  // dir_store_locks.cpp: the lock table as a base document and a journal of deltas.
  Result<std::vector<LockRecord>> read_lock_table(int dirfd, std::string_view node);
  Result<void> write_lock_base(int dirfd, std::string_view node, std::uint64_t epoch,
                               const std::vector<LockRecord>& locks);
  // false (nothing written): there is no journal of our base to append to, or it is full.
  Result<bool> append_lock_delta(int dirfd, std::string_view node, const LockDelta& delta);
  void remove_stale_journals(int dirfd, std::string_view node, std::string_view generation);

  std::string root_;
  std::mutex locks_mu_;  // journals_, and one lock-table write at a time per process
  std::map<std::string, LockJournal, std::less<>> journals_;
};

}  // namespace lockferry::store
