// SPDX-License-Identifier: Apache-2.0
// Reclaim audit: old primary's lock table against the adoptive node's; see audit.h.
#include "failover/audit.h"

#include "common/clock.h"

namespace lockferry::failover {
namespace {

std::string relative(const std::string& path, const std::string& root) {
  if (root.empty() || path.compare(0, root.size(), root) != 0) return path;
  std::string rest = path.substr(root.size());
  if (!rest.empty() && rest.front() != '/') return path;  // "/export2/x" is not under "/export"
  return rest;
}

bool overlaps(const LockRecord& a, const LockRecord& b) {
  return a.start <= b.end && b.start <= a.end;
}

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

AuditReport audit_locks(const std::vector<LockRecord>& old_locks,
                        const std::vector<LockRecord>& new_locks, const AuditOptions& options) {
  AuditReport report;
  report.at_ns = clock::now_ns();
  if (!old_locks.empty()) report.from_node = old_locks.front().node;
  if (!new_locks.empty()) report.to_node = new_locks.front().node;
  std::vector<std::string> new_paths;
  for (const auto& n : new_locks) new_paths.push_back(relative(n.path, options.new_root));
  std::vector<bool> used(new_locks.size(), false);

  auto same_client = [](const LockRecord& o, const LockRecord& n) {
    return o.nlm_host.empty() || n.nlm_host.empty() || o.nlm_host == n.nlm_host;
  };
  // Exact matches first, so a range that moved cannot take the lock of one that did not.
  for (const auto& o : old_locks) {
    AuditedLock a;
    a.old_lock = o;
    a.client = o.nlm_host;
    a.path = relative(o.path, options.old_root);
    report.entries.push_back(std::move(a));
  }
  for (auto& a : report.entries) {
    for (std::size_t i = 0; i < new_locks.size(); ++i) {
      const auto& n = new_locks[i];
      if (used[i] || new_paths[i] != a.path || !same_client(a.old_lock, n)) continue;
      if (n.start == a.old_lock.start && n.end == a.old_lock.end && n.type == a.old_lock.type) {
        used[i] = true;
        a.status = ReclaimStatus::reclaimed;
        a.now = n;
        break;
      }
    }
  }
  for (auto& a : report.entries) {
    if (a.status == ReclaimStatus::reclaimed) continue;
    for (std::size_t i = 0; i < new_locks.size(); ++i) {
      const auto& n = new_locks[i];
      if (used[i] || new_paths[i] != a.path || !same_client(a.old_lock, n)) continue;
      // The same client on the same file: reclaimed, but not as it was. Without client names an
      // overlap is required, so another client's lock elsewhere in the file does not count.
      const bool named = !a.old_lock.nlm_host.empty() && !n.nlm_host.empty();
      if (named || overlaps(a.old_lock, n)) {
        used[i] = true;
        a.status = ReclaimStatus::different_range;
        a.now = n;
        break;
      }
    }
  }
  for (const auto& a : report.entries) {
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
  for (std::size_t i = 0; i < new_locks.size(); ++i)
    if (!used[i]) report.unmatched.push_back(new_locks[i]);
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
