// SPDX-License-Identifier: Apache-2.0
// LockTable: POSIX byte-range arithmetic per (file, owner); see lock_table.h.
#include "capture/lock_table.h"

#include <algorithm>
#include <iterator>

namespace lockferry::capture {

// Removes [start, end] from `ranges`, keeping the parts of cut ranges outside it.
void LockTable::carve(Ranges& ranges, std::uint64_t start, std::uint64_t end) {
  auto it = ranges.upper_bound(start);
  if (it != ranges.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end >= start) it = prev;
  }
  std::vector<std::pair<std::uint64_t, Range>> remainders;
  while (it != ranges.end() && it->first <= end) {
    const std::uint64_t range_start = it->first;
    Range range = std::move(it->second);
    it = ranges.erase(it);
    // range_start < start implies start > 0; range.end > end implies end < max: no wrap-around.
    if (range_start < start) {
      Range left = range;
      left.end = start - 1;
      remainders.emplace_back(range_start, std::move(left));
    }
    if (range.end > end) remainders.emplace_back(end + 1, std::move(range));
  }
  for (auto& [s, r] : remainders) ranges.emplace(s, std::move(r));
}

// Inserts a range into a gap of `ranges` and merges it with same-type neighbours that touch it
// (the kernel merges "adjacent or overlapping" locks of one owner and type).
void LockTable::insert_merged(Ranges& ranges, std::uint64_t start, Range range) {
  auto it = ranges.emplace(start, std::move(range)).first;
  if (it != ranges.begin()) {
    auto prev = std::prev(it);
    if (prev->second.write == it->second.write && prev->second.end + 1 == it->first) {
      // The merged lock has existed since its oldest part was granted.
      const std::int64_t oldest = std::min(prev->second.granted_ns, it->second.granted_ns);
      const std::uint64_t merged_start = prev->first;
      Range merged = std::move(it->second);
      merged.granted_ns = oldest;
      ranges.erase(prev);
      ranges.erase(it);
      it = ranges.emplace(merged_start, std::move(merged)).first;
    }
  }
  auto next = std::next(it);
  if (next != ranges.end() && next->second.write == it->second.write &&
      it->second.end != LockRecord::kToEndOfFile && it->second.end + 1 == next->first) {
    it->second.end = next->second.end;
    it->second.granted_ns = std::min(it->second.granted_ns, next->second.granted_ns);
    ranges.erase(next);
  }
}

void LockTable::apply(const LockChange& change) {
  if (change.start > change.end) return;
  const Key key{change.dev, change.ino, change.owner};
  auto found = table_.find(key);
  if (change.kind == LockChange::Kind::released) {
    if (found == table_.end()) return;  // unlocking what the owner does not hold is a no-op
    carve(found->second, change.start, change.end);
    if (found->second.empty()) table_.erase(found);
    return;
  }
  Ranges& ranges = found != table_.end() ? found->second : table_[key];
  carve(ranges, change.start, change.end);
  Range range;
  range.end = change.end;
  range.write = change.write;
  range.manager_comm = change.manager_comm;
  range.manager_pid = change.manager_pid;
  range.owner_pid = change.owner_pid;
  range.path = change.path;
  range.nlm_host = change.nlm_host;
  range.granted_ns = change.time_ns;
  insert_merged(ranges, change.start, std::move(range));
}

std::size_t LockTable::drop_manager(std::uint32_t manager_pid) {
  std::size_t removed = 0;
  for (auto it = table_.begin(); it != table_.end();) {
    std::erase_if(it->second, [&](const auto& entry) {
      const bool drop = entry.second.manager_pid == manager_pid;
      removed += drop ? 1 : 0;
      return drop;
    });
    it = it->second.empty() ? table_.erase(it) : std::next(it);
  }
  return removed;
}

void LockTable::restore(const std::vector<LockRecord>& records) {
  table_.clear();
  for (const auto& r : records) {
    LockChange c;
    c.kind = LockChange::Kind::granted;
    c.write = r.type == "write";
    c.dev = r.dev;
    c.ino = r.ino;
    c.owner = r.owner;
    c.start = r.start;
    c.end = r.end;
    c.manager_comm = r.manager_comm;
    c.manager_pid = r.manager_pid;
    c.owner_pid = r.owner_pid;
    c.path = r.path;
    c.nlm_host = r.nlm_host;
    c.time_ns = r.granted_ns;
    apply(c);
  }
}

std::vector<LockRecord> LockTable::records(std::string_view node, std::uint64_t epoch) const {
  std::vector<LockRecord> out;
  out.reserve(size());
  for (const auto& [key, ranges] : table_) {
    for (const auto& [start, range] : ranges) {
      LockRecord r;
      r.node = std::string(node);
      r.epoch = epoch;
      r.manager_comm = range.manager_comm;
      r.manager_pid = range.manager_pid;
      r.dev = key.dev;
      r.ino = key.ino;
      r.path = range.path;
      r.start = start;
      r.end = range.end;
      r.type = range.write ? "write" : "read";
      r.owner = key.owner;
      r.owner_pid = range.owner_pid;
      r.granted_ns = range.granted_ns;
      r.nlm_host = range.nlm_host;
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::size_t LockTable::size() const {
  std::size_t n = 0;
  for (const auto& [key, ranges] : table_) n += ranges.size();
  return n;
}

}  // namespace lockferry::capture
