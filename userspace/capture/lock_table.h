// SPDX-License-Identifier: Apache-2.0
// LockTable: the locks each lock manager holds right now, rebuilt from the kernel's successful
// grants and releases with POSIX byte-range semantics, so the store gets the current state.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lockferry/records.h"

namespace lockferry::capture {

// One change the kernel made to the lock state (posix_lock_inode returned 0).
struct LockChange {
  enum class Kind { granted, released };
  Kind kind = Kind::granted;
  bool write = false;     // granted: F_WRLCK (else F_RDLCK)
  std::uint64_t dev = 0;  // kernel encoding (major << 20 | minor)
  std::uint64_t ino = 0;
  std::uint64_t owner = 0;  // the kernel's fl_owner
  std::uint64_t start = 0;
  std::uint64_t end = LockRecord::kToEndOfFile;  // inclusive
  // Who and where; kept with the granted range (a release carries no path).
  std::string manager_comm;
  std::uint32_t manager_pid = 0;
  std::int32_t owner_pid = 0;
  std::string path;
  std::string nlm_host;
  std::int64_t time_ns = 0;  // CLOCK_REALTIME of the change
};

// Per (file, owner), the owner's ranges exactly as the kernel keeps them (fs/locks.c
// posix_lock_inode): a grant replaces whatever the same owner held in its range (splitting a
// range it cuts into), then merges with adjacent or overlapping ranges of the same type; a
// release removes its range, splitting what it cuts. Different owners never interact: only
// granted changes come here, and the kernel already refused conflicting ones.
class LockTable {
 public:
  void apply(const LockChange& change);

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
  struct Range {
    std::uint64_t end = 0;
    bool write = false;
    std::string manager_comm;
    std::uint32_t manager_pid = 0;
    std::int32_t owner_pid = 0;
    std::string path;
    std::string nlm_host;
    std::int64_t granted_ns = 0;
  };
  using Ranges = std::map<std::uint64_t, Range>;  // by start; never overlapping

  static void carve(Ranges& ranges, std::uint64_t start, std::uint64_t end);
  static void insert_merged(Ranges& ranges, std::uint64_t start, Range range);

  std::map<Key, Ranges> table_;
};

}  // namespace lockferry::capture
