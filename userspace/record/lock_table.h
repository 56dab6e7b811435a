// SPDX-License-Identifier: Apache-2.0
// LockTable: the locks each lock manager holds right now, rebuilt from the kernel's successful
// grants and releases with POSIX byte-range semantics, so the store gets the current state.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "capture/lock_changes.h"
#include "lockferry/records.h"

namespace lockferry::record {

// The lock capture delivers these; the table turns them into lock records.
using capture::KernelLock;
using capture::KernelSnapshot;
using capture::LockChange;

struct ReconcileResult {
  std::size_t added = 0;        // ranges the kernel holds that the table lacked (or had otherwise)
  std::size_t removed = 0;      // ranges the table held that the kernel does not
  std::size_t provisional = 0;  // owners the table had not seen, given a provisional value
  std::size_t not_added = 0;    // lockd ranges only a shared kernel showed, left out (see below)
  std::size_t repairs() const { return added + removed; }
};

// Per (file, owner), the owner's ranges exactly as the kernel keeps them (fs/locks.c
// posix_lock_inode): a grant replaces whatever the same owner held in its range (splitting a
// range it cuts into), then merges with adjacent or overlapping ranges of the same type; a
// release removes its range, splitting what it cuts. Different owners never interact: only
// granted changes come here, and the kernel already refused conflicting ones.
//
// After lost events the table is reconciled with a KernelSnapshot. /proc does not tell lock
// owners (kernel pointers), so each kernel owner (a manager's POSIX locks; one open file's OFD
// locks) is matched to the table owner holding the same ranges, else the process's known POSIX
// owner, else a table owner of the file overlapping it most; one never seen gets a provisional
// owner, which the owner of the next change by that process on that file then takes over (the
// same owner for every provisional POSIX owner of the process), so releases keep matching.
//
// Kernel lockd is one kernel thread holding a lock owner per NLM client process, and /proc/locks
// lists them all under lockd's pid (KernelSnapshot::kernel_threads): its locks are matched range
// by range instead. A recorded range the kernel shows (same file, start, end and type) stays as
// it was, with its owner and NLM client; one it does not show goes; a range only the kernel
// shows is added under a provisional owner of its own, without a client (neither /proc/locks nor
// statd's sm/ say whose it is) and with the path of another recorded range of the file if any.
// A later release, or write grant, by a real owner overlapping exactly one such range takes it
// over. When lockd also serves other network namespaces' NFS servers on this kernel (several
// nodes on one kernel: containers, the guest testbed), /proc/locks mixes their locks with ours
// (KernelSnapshot::kernel_threads_shared): ranges only the kernel shows are then left out (they
// may be another node's), while recorded ranges the kernel no longer shows still go.
class LockTable {
 public:
  void apply(const LockChange& change);

  // Makes the table hold exactly `snapshot`'s locks for the managers it covers (other managers'
  // ranges are untouched), keeping the path and grant time of ranges that were right.
  ReconcileResult reconcile(const KernelSnapshot& snapshot);

  // Forgets every lock of a lock manager process that exited (the kernel released them all; the
  // releases were seen too unless events were lost) or stopped being a lock manager. Returns how
  // many ranges were removed.
  std::size_t drop_manager(std::uint32_t manager_pid);

  // Replaces the table with `records` (as stored by a previous run), merged as above.
  void restore(const std::vector<LockRecord>& records);

  // The table as records of `node` at `epoch`, ordered by (dev, ino, owner, start).
  std::vector<LockRecord> records(std::string_view node, std::uint64_t epoch) const;

  std::size_t size() const;  // ranges held
  bool empty() const { return table_.empty(); }

 private:
  struct Key {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::uint64_t owner = 0;
    auto operator<=>(const Key&) const = default;
  };
  enum class Class : std::uint8_t { unknown, posix, ofd };  // unknown: restored from the store
  struct Range {
    std::uint64_t end = 0;
    bool write = false;
    Class cls = Class::unknown;
    std::string manager_comm;
    std::uint32_t manager_pid = 0;
    std::int32_t owner_pid = 0;
    std::string path;
    std::string nlm_host;
    std::string client_addr;
    std::string server_addr;
    std::int64_t granted_ns = 0;
  };
  using Ranges = std::map<std::uint64_t, Range>;  // by start; never overlapping

  static void carve(Ranges& ranges, std::uint64_t start, std::uint64_t end);
  static void insert_merged(Ranges& ranges, std::uint64_t start, Range range);
  void adopt_provisional(const LockChange& change, const Key& key);
  void rekey(const Key& from, const Key& to);
  void erase_key(std::map<Key, Ranges>::iterator it);
  // A reconcile, per manager and then per file: which table owner each kernel owner is, then the
  // table's ranges rewritten to the kernel's.
  using LockList = std::vector<const KernelLock*>;
  using File = std::pair<std::uint64_t, std::uint64_t>;  // (dev, ino)
  using Group = std::pair<bool, std::uint64_t>;          // (ofd, file_id); POSIX locks: one group
  void reconcile_manager(std::uint32_t pid, const std::string& comm, const LockList& locks,
                         std::int64_t time_ns, ReconcileResult& result);
  void reconcile_ranges(std::uint32_t pid, const std::string& comm, const LockList& locks,
                        const KernelSnapshot& snapshot, ReconcileResult& result);
  void adopt_provisional_range(const LockChange& change, const Key& key);
  std::string known_path(std::uint64_t dev, std::uint64_t ino) const;
  std::map<Key, const LockList*> match_owners(std::uint32_t pid, const File& file,
                                              const std::map<Group, LockList>& groups,
                                              const std::vector<Key>& keys,
                                              ReconcileResult& result);
  void rewrite_owners(std::uint32_t pid, const std::string& comm, const std::vector<Key>& keys,
                      const std::map<Key, const LockList*>& desired, std::int64_t time_ns,
                      ReconcileResult& result);

  std::map<Key, Ranges> table_;
  std::set<Key> provisional_;  // owners made up by a reconcile, until a change names the real one
  std::map<std::uint32_t, std::uint64_t> posix_owner_;  // manager pid -> its fcntl locks' owner
  std::set<std::uint32_t> range_matched_;  // kernel-thread managers (kernel lockd), see above
};

}  // namespace lockferry::record
