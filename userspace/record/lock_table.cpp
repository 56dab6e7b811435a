// SPDX-License-Identifier: Apache-2.0
// LockTable: POSIX byte-range arithmetic per (file, owner); see lock_table.h.
#include "record/lock_table.h"

#include <algorithm>
#include <iterator>
#include <optional>

namespace lockferry::record {

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

void LockTable::erase_key(std::map<Key, Ranges>::iterator it) {
  provisional_.erase(it->first);
  table_.erase(it);
}

// Moves `from`'s ranges to owner `to` (merging with what `to` holds there already).
void LockTable::rekey(const Key& from, const Key& to) {
  auto it = table_.find(from);
  if (it == table_.end() || from == to) return;
  Ranges moved = std::move(it->second);
  erase_key(it);
  Ranges& dst = table_[to];
  for (auto& [start, range] : moved) {
    carve(dst, start, range.end);
    insert_merged(dst, start, std::move(range));
  }
}

// A change by an owner the table does not know on this file, while a reconcile left a
// provisional owner of the same process there: that was this owner (see lock_table.h).
void LockTable::adopt_provisional(const LockChange& change, const Key& key) {
  if (range_matched_.contains(change.manager_pid)) return adopt_provisional_range(change, key);
  const auto posix = posix_owner_.find(change.manager_pid);
  // A release on close does not say whether it closes an OFD file or drops the process's POSIX
  // locks; the process's known POSIX owner tells.
  std::optional<Class> cls;
  if (change.ofd)
    cls = Class::ofd;
  else if (!change.on_close || (posix != posix_owner_.end() && posix->second == change.owner))
    cls = Class::posix;
  else if (posix != posix_owner_.end())
    cls = Class::ofd;
  std::vector<Key> here, elsewhere;
  for (const Key& p : provisional_) {
    const auto it = table_.find(p);
    if (it == table_.end() || it->second.empty()) continue;
    const Range& any = it->second.begin()->second;
    if (any.manager_pid != change.manager_pid || (cls && any.cls != *cls)) continue;
    if (p.dev == key.dev && p.ino == key.ino)
      here.push_back(p);
    else if (cls == Class::posix && !change.on_close)
      elsewhere.push_back(p);
  }
  // Several open files of the process lock this file: the one holding the changed range.
  if (here.size() > 1)
    std::erase_if(here, [&](const Key& p) {
      const Ranges& ranges = table_.at(p);
      for (const auto& [start, range] : ranges)
        if (start <= change.end && range.end >= change.start) return false;
      return true;
    });
  if (here.size() == 1 && (!table_.contains(key) || cls == Class::posix)) rekey(here[0], key);
  // One process has one POSIX owner (its files_struct) on every file.
  for (const Key& p : elsewhere) rekey(p, Key{p.dev, p.ino, key.owner});
}

void LockTable::apply(const LockChange& change) {
  if (change.kind == LockChange::Kind::reconciled) {
    if (change.snapshot) reconcile(*change.snapshot);
    return;
  }
  if (change.start > change.end) return;
  const Key key{change.dev, change.ino, change.owner};
  if (!change.ofd && !change.on_close && change.owner != 0)
    posix_owner_[change.manager_pid] = change.owner;
  if (!provisional_.empty()) adopt_provisional(change, key);
  auto found = table_.find(key);
  if (change.kind == LockChange::Kind::released) {
    if (found == table_.end()) return;  // unlocking what the owner does not hold is a no-op
    carve(found->second, change.start, change.end);
    if (found->second.empty()) erase_key(found);
    return;
  }
  Ranges& ranges = found != table_.end() ? found->second : table_[key];
  carve(ranges, change.start, change.end);
  Range range;
  range.end = change.end;
  range.write = change.write;
  range.cls = change.ofd ? Class::ofd : Class::posix;
  range.manager_comm = change.manager_comm;
  range.manager_pid = change.manager_pid;
  range.owner_pid = change.owner_pid;
  range.path = change.path;
  range.nlm_host = change.nlm_host;
  range.client_addr = change.client_addr;
  range.server_addr = change.server_addr;
  range.granted_ns = change.time_ns;
  insert_merged(ranges, change.start, std::move(range));
}

namespace {

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The same kernel owner gets the same provisional value in every reconcile until it is adopted.
std::uint64_t provisional_owner(std::uint32_t pid, std::uint64_t dev, std::uint64_t ino, bool ofd,
                                std::uint64_t file_id) {
  std::uint64_t h = mix64(0x70726f76ULL ^ pid);
  for (std::uint64_t v : {dev, ino, std::uint64_t{ofd}, file_id}) h = mix64(h ^ v);
  return h == 0 ? 1 : h;
}

using LockList = std::vector<const KernelLock*>;  // LockTable::LockList, for the helpers below

// Bytes of `locks` that `ranges` also covers, with the same type.
template <typename Ranges>
std::uint64_t overlap(const Ranges& ranges, const LockList& locks) {
  std::uint64_t bytes = 0;
  for (const KernelLock* l : locks)
    for (const auto& [start, range] : ranges) {
      const std::uint64_t lo = std::max(start, l->start), hi = std::min(range.end, l->end);
      if (lo <= hi && range.write == l->write) bytes += std::max<std::uint64_t>(hi - lo, 1);
    }
  return bytes;
}

template <typename Ranges>
bool same_ranges(const Ranges& ranges, const LockList& locks) {
  if (ranges.size() != locks.size()) return false;
  for (const KernelLock* l : locks) {
    const auto it = ranges.find(l->start);
    if (it == ranges.end() || it->second.end != l->end || it->second.write != l->write)
      return false;
  }
  return true;
}

}  // namespace

ReconcileResult LockTable::reconcile(const KernelSnapshot& snapshot) {
  ReconcileResult result;
  std::map<std::uint32_t, LockList> by_pid;
  for (const auto& l : snapshot.locks)
    if (snapshot.managers.contains(l.manager_pid)) by_pid[l.manager_pid].push_back(&l);
  for (const auto& [pid, comm] : snapshot.managers)
    if (snapshot.kernel_threads.contains(pid))
      reconcile_ranges(pid, comm, by_pid[pid], snapshot, result);
    else
      reconcile_manager(pid, comm, by_pid[pid], snapshot.time_ns, result);
  return result;
}

void LockTable::reconcile_manager(std::uint32_t pid, const std::string& comm, const LockList& locks,
                                  std::int64_t time_ns, ReconcileResult& result) {
  std::map<File, std::map<Group, LockList>> kernel;
  for (const KernelLock* l : locks)
    kernel[{l->dev, l->ino}][{l->ofd, l->ofd ? l->file_id : 0}].push_back(l);
  std::map<File, std::vector<Key>> owned;
  for (const auto& [key, ranges] : table_)
    if (!ranges.empty() && ranges.begin()->second.manager_pid == pid)
      owned[{key.dev, key.ino}].push_back(key);
  std::set<File> files;
  for (const auto& [file, groups] : kernel) files.insert(file);
  for (const auto& [file, keys] : owned) files.insert(file);

  for (const File& file : files) {
    const auto& keys = owned[file];
    const auto desired = match_owners(pid, file, kernel[file], keys, result);
    rewrite_owners(pid, comm, keys, desired, time_ns, result);
  }
}

std::map<LockTable::Key, const LockTable::LockList*> LockTable::match_owners(
    std::uint32_t pid, const File& file, const std::map<Group, LockList>& groups,
    const std::vector<Key>& keys, ReconcileResult& result) {
  auto compatible = [&](const Key& key, bool ofd) {
    const Class c = table_.at(key).begin()->second.cls;
    return c == Class::unknown || (c == Class::ofd) == ofd;
  };
  std::map<Key, const LockList*> desired;
  std::set<Key> used;
  std::vector<std::pair<Group, const LockList*>> pending;
  // 1. A table owner holding exactly the kernel owner's ranges is that owner.
  for (const auto& [group, list] : groups) {
    bool matched = false;
    for (const Key& key : keys) {
      if (used.contains(key) || !compatible(key, group.first) || !same_ranges(table_.at(key), list))
        continue;
      desired[key] = &list;
      used.insert(key);
      matched = true;
      break;
    }
    if (!matched) pending.emplace_back(group, &list);
  }
  // 2. Else the process's POSIX owner, else the table owner overlapping most, else provisional.
  const auto posix = posix_owner_.find(pid);
  for (const auto& [group, list] : pending) {
    std::optional<Key> pick;
    if (!group.first) {
      if (posix != posix_owner_.end())
        pick = Key{file.first, file.second, posix->second};
      else
        for (const Key& key : keys)
          if (!used.contains(key) && table_.at(key).begin()->second.cls == Class::posix) {
            pick = key;
            break;
          }
    }
    if (!pick) {
      std::uint64_t best = 0;
      for (const Key& key : keys) {
        if (used.contains(key) || !compatible(key, group.first)) continue;
        const std::uint64_t bytes = overlap(table_.at(key), *list);
        if (bytes > best) {
          best = bytes;
          pick = key;
        }
      }
    }
    if (!pick || used.contains(*pick)) {
      pick = Key{file.first, file.second,
                 provisional_owner(pid, file.first, file.second, group.first, group.second)};
      if (!table_.contains(*pick)) ++result.provisional;
      provisional_.insert(*pick);
    }
    desired[*pick] = list;
    used.insert(*pick);
  }
  return desired;
}

// 3. The table now says what the kernel says, keeping the path and grant time of what was right.
void LockTable::rewrite_owners(std::uint32_t pid, const std::string& comm,
                               const std::vector<Key>& keys,
                               const std::map<Key, const LockList*>& desired, std::int64_t time_ns,
                               ReconcileResult& result) {
  for (const Key& key : keys) {
    if (desired.contains(key)) continue;
    const auto it = table_.find(key);
    result.removed += it->second.size();
    erase_key(it);
  }
  for (const auto& [key, list] : desired) {
    Ranges& current = table_[key];
    Ranges next;
    for (const KernelLock* l : *list) {
      const auto it = current.find(l->start);
      if (it != current.end() && it->second.end == l->end && it->second.write == l->write) {
        Range kept = std::move(it->second);
        current.erase(it);
        kept.cls = l->ofd ? Class::ofd : Class::posix;
        next.emplace(l->start, std::move(kept));
        continue;
      }
      Range range;
      range.end = l->end;
      range.write = l->write;
      range.cls = l->ofd ? Class::ofd : Class::posix;
      range.manager_comm = comm;
      range.manager_pid = pid;
      range.owner_pid = static_cast<std::int32_t>(pid);  // fl_pid: the locking process
      range.path = l->path;
      range.granted_ns = time_ns;  // not known: when the reconcile found it
      if (next.emplace(l->start, std::move(range)).second) ++result.added;
    }
    result.removed += current.size();
    current = std::move(next);
    if (current.empty()) erase_key(table_.find(key));
  }
}

std::size_t LockTable::drop_manager(std::uint32_t manager_pid) {
  std::size_t removed = 0;
  for (auto it = table_.begin(); it != table_.end();) {
    std::erase_if(it->second, [&](const auto& entry) {
      const bool drop = entry.second.manager_pid == manager_pid;
      removed += drop ? 1 : 0;
      return drop;
    });
    if (it->second.empty()) {
      provisional_.erase(it->first);
      it = table_.erase(it);
    } else {
      ++it;
    }
  }
  posix_owner_.erase(manager_pid);
  range_matched_.erase(manager_pid);
  return removed;
}

void LockTable::restore(const std::vector<LockRecord>& records) {
  table_.clear();
  provisional_.clear();
  posix_owner_.clear();
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
    c.client_addr = r.client_addr;
    c.server_addr = r.server_addr;
    c.time_ns = r.granted_ns;
    apply(c);
  }
  // The store does not say which were OFD locks; a reconcile tells.
  posix_owner_.clear();
  for (auto& [key, ranges] : table_)
    for (auto& [start, range] : ranges) range.cls = Class::unknown;
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
      r.client_addr = range.client_addr;
      r.server_addr = range.server_addr;
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

}  // namespace lockferry::record
