// SPDX-License-Identifier: Apache-2.0
// LockDelta: what changed in a node's lock table between two writes, so a store can write only
// that (Store::update_locks) instead of the whole table.
#pragma once

#include <compare>
#include <cstdint>
#include <vector>

#include "lockferry/records.h"

namespace lockferry::store {

// One range of a node's lock table. The recorder's table holds at most one range per key: the
// ranges of one owner on one file never overlap (fs/locks.c merges and splits them).
struct LockKey {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint64_t owner = 0;
  std::uint64_t start = 0;
  auto operator<=>(const LockKey&) const = default;
};

inline LockKey key_of(const LockRecord& l) { return {l.dev, l.ino, l.owner, l.start}; }

struct LockDelta {
  std::vector<LockKey> removed;  // ranges that are gone (a key the table lacks is ignored)
  std::vector<LockRecord> put;   // ranges that are new or changed, replacing any of their key
  bool empty() const { return removed.empty() && put.empty(); }
  std::size_t size() const { return removed.size() + put.size(); }
};

// Applies `delta` to `table` the way every store does: every range of a removed or put key
// leaves the table, then the put ranges are appended in their order.
void apply_lock_delta(std::vector<LockRecord>& table, const LockDelta& delta);

// Orders a table by key_of (stable), as Store::list_locks returns every table whatever writes
// made it.
void sort_locks(std::vector<LockRecord>& table);

// The delta that turns `before` into `after`; both sorted by key_of, one range per key (as
// record::LockTable::records returns them). A range that differs in any field is put again.
LockDelta diff_locks(const std::vector<LockRecord>& before, const std::vector<LockRecord>& after);

}  // namespace lockferry::store
