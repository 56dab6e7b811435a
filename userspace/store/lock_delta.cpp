// SPDX-License-Identifier: Apache-2.0
// LockDelta: applying and computing lock-table deltas; see lock_delta.h.
#include "store/lock_delta.h"

#include <algorithm>
#include <set>

namespace lockferry::store {

void apply_lock_delta(std::vector<LockRecord>& table, const LockDelta& delta) {
  std::set<LockKey> leaving(delta.removed.begin(), delta.removed.end());
  for (const auto& l : delta.put) leaving.insert(key_of(l));
  std::erase_if(table, [&](const LockRecord& l) { return leaving.contains(key_of(l)); });
  table.insert(table.end(), delta.put.begin(), delta.put.end());
}

void sort_locks(std::vector<LockRecord>& table) {
  std::stable_sort(table.begin(), table.end(),
                   [](const LockRecord& a, const LockRecord& b) { return key_of(a) < key_of(b); });
}

LockDelta diff_locks(const std::vector<LockRecord>& before, const std::vector<LockRecord>& after) {
  LockDelta delta;
  auto b = before.begin();
  auto a = after.begin();
  // A merge walk of the two key-ordered tables: O(n), no lookups.
  while (b != before.end() || a != after.end()) {
    if (a == after.end() || (b != before.end() && key_of(*b) < key_of(*a))) {
      delta.removed.push_back(key_of(*b++));
    } else if (b == before.end() || key_of(*a) < key_of(*b)) {
      delta.put.push_back(*a++);
    } else {
      if (!(*a == *b)) delta.put.push_back(*a);
      ++a;
      ++b;
    }
  }
  return delta;
}

}  // namespace lockferry::store
