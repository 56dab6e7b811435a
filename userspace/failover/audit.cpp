// SPDX-License-Identifier: Apache-2.0
// Reclaim audit: old primary's lock table against the adoptive node's; see audit.h.
#include "failover/audit.h"

#include <algorithm>
#include <map>
#include <string_view>
#include <tuple>

#include "common/clock.h"

namespace lockferry::failover {
namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);

std::string relative(const std::string& path, const std::string& root) {
  if (root.empty() || path.compare(0, root.size(), root) != 0) return path;
  std::string rest = path.substr(root.size());
  if (!rest.empty() && rest.front() != '/') return path;  // "/export2/x" is not under "/export"
  return rest;
}

// New locks in table order, handed out first unused first. `used` is shared by every queue a
// lock is in; a used one is skipped once per queue, so all lookups together cost O(n).
struct Queue {
  std::vector<std::size_t> ids;  // ascending
  std::size_t next = 0;
  std::size_t first_unused(const std::vector<bool>& used) {
    while (next < ids.size() && used[ids[next]]) ++next;
    return next < ids.size() ? ids[next] : kNone;
  }
};

// The unused new locks of one file ordered by (start, table order), in a segment tree holding the
// largest end below each node. The leftmost lock whose end reaches `start` is the one with the
// smallest start that could overlap [start, end]: it overlaps iff it starts by `end` (every lock
// left of it ends before `start`, every lock right of it starts after it). O(log n) per lookup.
class OverlapIndex {
 public:
  OverlapIndex(std::vector<std::size_t> ids, const std::vector<LockRecord>& locks)
      : locks_(locks), ids_(std::move(ids)) {
    std::sort(ids_.begin(), ids_.end(), [&](std::size_t a, std::size_t b) {
      return std::tie(locks_[a].start, a) < std::tie(locks_[b].start, b);
    });
    while (size_ < ids_.size()) size_ *= 2;
    tree_.assign(2 * size_, Node{});
    for (std::size_t i = 0; i < ids_.size(); ++i) tree_[size_ + i] = {true, locks_[ids_[i]].end};
    for (std::size_t n = size_ - 1; n >= 1; --n) tree_[n] = join(tree_[2 * n], tree_[2 * n + 1]);
  }

  // The unused lock with the smallest start overlapping [start, end], or kNone.
  std::size_t find(std::uint64_t start, std::uint64_t end) const {
    if (!reaches(1, start)) return kNone;
    std::size_t n = 1;
    while (n < size_) n = reaches(2 * n, start) ? 2 * n : 2 * n + 1;
    const std::size_t id = ids_[n - size_];
    return locks_[id].start <= end ? id : kNone;
  }

  void remove(std::size_t id) {
    const auto it =
        std::lower_bound(ids_.begin(), ids_.end(), id, [&](std::size_t a, std::size_t b) {
          return std::tie(locks_[a].start, a) < std::tie(locks_[b].start, b);
        });
    if (it == ids_.end() || *it != id) return;
    std::size_t n = size_ + static_cast<std::size_t>(it - ids_.begin());
    tree_[n] = Node{};
    for (n /= 2; n >= 1; n /= 2) tree_[n] = join(tree_[2 * n], tree_[2 * n + 1]);
  }

 private:
  struct Node {
    bool any = false;  // an unused lock below
    std::uint64_t max_end = 0;
  };
  static Node join(const Node& a, const Node& b) {
    if (!a.any) return b;
    if (!b.any) return a;
    return {true, std::max(a.max_end, b.max_end)};
  }
  bool reaches(std::size_t n, std::uint64_t start) const {
    return tree_[n].any && tree_[n].max_end >= start;
  }

  const std::vector<LockRecord>& locks_;
  std::vector<std::size_t> ids_;
  std::size_t size_ = 1;
  std::vector<Node> tree_;
};

}  // namespace

const char* to_string(ReclaimStatus status) {
  switch (status) {
    case ReclaimStatus::reclaimed:
      return "reclaimed";
    case ReclaimStatus::different_range:
      return "different_range";
    case ReclaimStatus::not_reclaimed:
      return "not_reclaimed";
  }
  return "?";
}

namespace {

// One audit's matching of old locks to new ones, in two passes over the report's entries; each new
// lock matches at most one old lock.
class ReclaimMatcher {
 public:
  ReclaimMatcher(const std::vector<LockRecord>& new_locks, const std::string& new_root)
      : new_locks_(new_locks), used_(new_locks.size(), false) {
    new_paths_.reserve(new_locks.size());
    for (const auto& n : new_locks) new_paths_.push_back(relative(n.path, new_root));
  }

  // Exact matches first, so a range that moved cannot take the lock of one that did not. An old
  // lock takes the first unused new lock (table order) of the same file, range and type whose
  // client is the same or not named on one side.
  void match_exact(std::vector<AuditedLock>& entries) {
    using Exact = std::tuple<std::string_view, std::uint64_t, std::uint64_t, std::string_view>;
    std::map<Exact, Queue> exact_any, exact_unnamed;
    std::map<std::pair<Exact, std::string_view>, Queue> exact_by_client;
    for (std::size_t i = 0; i < new_locks_.size(); ++i) {
      const auto& n = new_locks_[i];
      const Exact key{new_paths_[i], n.start, n.end, n.type};
      exact_any[key].ids.push_back(i);
      if (n.nlm_host.empty())
        exact_unnamed[key].ids.push_back(i);
      else
        exact_by_client[{key, n.nlm_host}].ids.push_back(i);
    }
    auto first_of = [&](auto& queues, const auto& key) {
      const auto it = queues.find(key);
      return it == queues.end() ? kNone : it->second.first_unused(used_);
    };
    for (auto& a : entries) {
      const auto& o = a.old_lock;
      const Exact key{a.path, o.start, o.end, o.type};
      std::size_t id = kNone;
      if (o.nlm_host.empty()) {
        id = first_of(exact_any, key);
      } else {
        id = std::min(first_of(exact_unnamed, key),
                      first_of(exact_by_client, std::pair{key, std::string_view(o.nlm_host)}));
      }
      if (id != kNone) match(a, id, ReclaimStatus::reclaimed);
    }
  }

  // Then the same client on the same file, but not as it was: an old lock whose client is named
  // takes the first unused lock of that client on the file (any range); failing that, and for
  // locks whose client is not named, the overlapping unused lock (client unnamed, or the same)
  // with the smallest start - an overlap is required without names, so another client's lock
  // elsewhere in the file does not count.
  void match_moved(std::vector<AuditedLock>& entries) {
    struct FileIndex {
      std::vector<std::size_t> all, unnamed;
      std::map<std::string_view, Queue> by_client;
    };
    std::map<std::string_view, FileIndex> files;
    for (std::size_t i = 0; i < new_locks_.size(); ++i) {
      if (used_[i]) continue;
      FileIndex& f = files[new_paths_[i]];
      f.all.push_back(i);
      if (new_locks_[i].nlm_host.empty())
        f.unnamed.push_back(i);
      else
        f.by_client[new_locks_[i].nlm_host].ids.push_back(i);
    }
    struct FileOverlaps {
      OverlapIndex all, unnamed;
    };
    std::map<std::string_view, FileOverlaps> overlaps;
    for (auto& [path, f] : files)
      // Braces: clang 14 (the fuzz build) has no parenthesized aggregate initialization.
      overlaps.try_emplace(path, FileOverlaps{OverlapIndex(std::move(f.all), new_locks_),
                                              OverlapIndex(std::move(f.unnamed), new_locks_)});
    for (auto& a : entries) {
      if (a.status == ReclaimStatus::reclaimed) continue;
      const auto file = files.find(a.path);
      if (file == files.end()) continue;
      FileOverlaps& o = overlaps.at(a.path);
      const LockRecord& old = a.old_lock;
      std::size_t id = kNone;
      if (old.nlm_host.empty()) {
        id = o.all.find(old.start, old.end);
      } else {
        if (auto q = file->second.by_client.find(old.nlm_host); q != file->second.by_client.end())
          id = q->second.first_unused(used_);
        if (id == kNone) id = o.unnamed.find(old.start, old.end);
      }
      if (id == kNone) continue;
      match(a, id, ReclaimStatus::different_range);
      o.all.remove(id);
      if (new_locks_[id].nlm_host.empty()) o.unnamed.remove(id);
    }
  }

  std::vector<LockRecord> unmatched() const {
    std::vector<LockRecord> out;
    for (std::size_t i = 0; i < new_locks_.size(); ++i)
      if (!used_[i]) out.push_back(new_locks_[i]);
    return out;
  }

 private:
  void match(AuditedLock& a, std::size_t id, ReclaimStatus status) {
    used_[id] = true;
    a.status = status;
    a.now = new_locks_[id];
  }

  const std::vector<LockRecord>& new_locks_;
  std::vector<std::string> new_paths_;
  std::vector<bool> used_;
};

void count(const AuditedLock& a, AuditReport& report) {
  ClientAudit& c = report.clients[a.client];
  ++c.locks;
  ++report.locks;
  switch (a.status) {
    case ReclaimStatus::reclaimed:
      ++c.reclaimed;
      ++report.reclaimed;
      break;
    case ReclaimStatus::different_range:
      ++c.different_range;
      ++report.different_range;
      break;
    case ReclaimStatus::not_reclaimed:
      ++c.not_reclaimed;
      ++report.not_reclaimed;
      break;
  }
}

}  // namespace

AuditReport audit_locks(const std::vector<LockRecord>& old_locks,
                        const std::vector<LockRecord>& new_locks, const AuditOptions& options) {
  AuditReport report;
  report.at_ns = clock::now_ns();
  if (!old_locks.empty()) report.from_node = old_locks.front().node;
  if (!new_locks.empty()) report.to_node = new_locks.front().node;
  report.entries.reserve(old_locks.size());
  for (const auto& o : old_locks) {
    AuditedLock a;
    a.old_lock = o;
    a.client = o.nlm_host;
    a.path = relative(o.path, options.old_root);
    report.entries.push_back(std::move(a));
  }
  ReclaimMatcher matcher(new_locks, options.new_root);
  matcher.match_exact(report.entries);
  matcher.match_moved(report.entries);
  for (const auto& a : report.entries) count(a, report);
  report.unmatched = matcher.unmatched();
  return report;
}

Result<AuditReport> audit_from_store(store::Store& store, const std::string& from_node,
                                     const std::string& to_node, const AuditOptions& options) {
  auto old_locks = store.list_locks(from_node);
  if (!old_locks)
    return make_error("cannot read the lock table of node {} (the old primary) from {}: {}",
                      from_node, store.url(), old_locks.error().message);
  auto new_locks = store.list_locks(to_node);
  if (!new_locks)
    return make_error("cannot read the lock table of node {} (this node) from {}: {}", to_node,
                      store.url(), new_locks.error().message);
  AuditReport report = audit_locks(*old_locks, *new_locks, options);
  report.from_node = from_node;
  report.to_node = to_node;
  return report;
}

}  // namespace lockferry::failover
