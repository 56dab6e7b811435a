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
//   <node>/locks.json                 the node's lock table: current state, replaced whole
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

#include <memory>
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
  Result<std::vector<LockRecord>> list_locks(std::string_view node) override;
  Result<std::vector<std::string>> list_nodes() override;
  Result<std::uint64_t> epoch(std::string_view node) override;
  Result<Fence> fence(std::string_view node) override;
  Result<std::uint64_t> bump_epoch(std::string_view node, std::uint64_t expected,
                                   std::string_view adopter) override;
  Result<void> put_migration(const MigrationRecord& migration) override;
  Result<std::vector<MigrationRecord>> list_migrations() override;

 private:
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

  std::string root_;
};

}  // namespace lockferry::store
