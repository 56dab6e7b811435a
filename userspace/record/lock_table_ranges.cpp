// SPDX-License-Identifier: Apache-2.0
// LockTable's reconcile of a kernel-thread lock manager (kernel lockd), range by range: /proc/locks
// lists every NLM client's lock under lockd's one pid, so owners cannot be matched; see
// lock_table.h.
#include <algorithm>
#include <iterator>
#include <tuple>

#include "record/lock_table.h"

namespace lockferry::record {
namespace {

// Provisional owner of one range only the kernel showed: the same range gets the same owner in
// every reconcile until a real owner takes it over, and no two such ranges share one (each may be
// another NLM client's).
std::uint64_t provisional_range_owner(std::uint32_t pid, const KernelLock& l, std::size_t nth) {
  std::uint64_t h = 0x6c6f636b64ULL ^ pid;  // "lockd"
  for (std::uint64_t v : {l.dev, l.ino, l.start, l.end, std::uint64_t{l.write}, std::uint64_t{nth}})
    h = (h ^ v) * 0x100000001b3ULL;
  return h == 0 ? 1 : h;
}

using RangeKey = std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, bool>;
RangeKey range_key(std::uint64_t dev, std::uint64_t ino, std::uint64_t start, std::uint64_t end,
                   bool write) {
  return {dev, ino, start, end, write};
}

}  // namespace

std::string LockTable::known_path(std::uint64_t dev, std::uint64_t ino) const {
  for (auto it = table_.lower_bound(Key{dev, ino, 0}); it != table_.end(); ++it) {
    if (it->first.dev != dev || it->first.ino != ino) break;
    for (const auto& [start, range] : it->second)
      if (!range.path.empty()) return range.path;
  }
  return {};
}

void LockTable::reconcile_ranges(std::uint32_t pid, const std::string& comm, const LockList& locks,
                                 const KernelSnapshot& snapshot, ReconcileResult& result) {
  range_matched_.insert(pid);
  // How many locks the kernel holds per (file, range, type): several clients may hold the same
  // read range.
  std::map<RangeKey, std::vector<const KernelLock*>> wanted;
  for (const KernelLock* l : locks)
    wanted[range_key(l->dev, l->ino, l->start, l->end, l->write)].push_back(l);
  // 1. A recorded range the kernel shows stays, with its owner and client; others go.
  for (auto it = table_.begin(); it != table_.end();) {
    Ranges& ranges = it->second;
    for (auto r = ranges.begin(); r != ranges.end();) {
      if (r->second.manager_pid != pid) {
        ++r;
        continue;
      }
      auto w = wanted.find(
          range_key(it->first.dev, it->first.ino, r->first, r->second.end, r->second.write));
      if (w != wanted.end() && !w->second.empty()) {
        w->second.pop_back();
        ++r;
        continue;
      }
      r = ranges.erase(r);
      ++result.removed;
    }
    if (ranges.empty()) {
      provisional_.erase(it->first);
      it = table_.erase(it);
    } else {
      ++it;
    }
  }
  // 2. What only the kernel shows: one provisional owner per range, no client; nothing when
  // lockd serves other namespaces too (whose lock it is, not even the node is known).
  if (snapshot.kernel_threads_shared) {
    for (const auto& [where, left] : wanted) result.not_added += left.size();
    return;
  }
  for (const auto& [where, left] : wanted)
    for (std::size_t nth = 0; nth < left.size(); ++nth) {
      const KernelLock& l = *left[nth];
      const Key key{l.dev, l.ino, provisional_range_owner(pid, l, nth)};
      Range range;
      range.end = l.end;
      range.write = l.write;
      range.cls = Class::posix;
      range.manager_comm = comm;
      range.manager_pid = pid;
      range.owner_pid = static_cast<std::int32_t>(pid);  // lockd's fl_pid: its own tgid
      range.path = l.path.empty() ? known_path(l.dev, l.ino) : l.path;
      range.granted_ns = snapshot.time_ns;  // not known: when the reconcile found it
      if (!table_.contains(key)) ++result.provisional;
      provisional_.insert(key);
      carve(table_[key], l.start, l.end);
      insert_merged(table_[key], l.start, std::move(range));
      ++result.added;
    }
}

// A release or write grant by a real owner of kernel lockd overlapping exactly one provisional
// range of the file: that range was this owner's (the kernel grants no write lock over another
// owner's range, and releases only the owner's own). A read grant says nothing: readers share.
void LockTable::adopt_provisional_range(const LockChange& change, const Key& key) {
  if (change.kind == LockChange::Kind::granted && !change.write) return;
  std::vector<Key> overlapping;
  for (auto it = provisional_.lower_bound(Key{change.dev, change.ino, 0});
       it != provisional_.end() && it->dev == change.dev && it->ino == change.ino; ++it) {
    const auto found = table_.find(*it);
    if (found == table_.end()) continue;
    for (const auto& [start, range] : found->second)
      if (range.manager_pid == change.manager_pid && start <= change.end &&
          range.end >= change.start) {
        overlapping.push_back(*it);
        break;
      }
  }
  if (overlapping.size() == 1) rekey(overlapping.front(), key);
}

}  // namespace lockferry::record
