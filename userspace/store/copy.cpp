// SPDX-License-Identifier: Apache-2.0
// copy_store: one store's whole content into another, then both read back and compared.
#include "store/copy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "statmon/record.h"

namespace lockferry::store {
namespace {

using Files = std::map<std::string, std::vector<MonitorRecord>>;

Files by_file(const std::vector<MonitorRecord>& records) {
  Files files;
  for (const auto& r : records) files[r.file_name].push_back(r);
  return files;
}

struct NodeState {
  std::vector<MonitorRecord> records;
  std::vector<LockRecord> locks;
  Fence fence;
};

Result<NodeState> read_node(Store& store, const std::string& node) {
  NodeState state;
  auto records = store.list_monitor(node);
  if (!records) return records.error();
  auto locks = store.list_locks(node);
  if (!locks) return locks.error();
  auto fence = store.fence(node);
  if (!fence) return fence.error();
  state.records = std::move(*records);
  state.locks = std::move(*locks);
  state.fence = std::move(*fence);
  return state;
}

using MigrationKey = std::tuple<std::string, std::uint64_t>;

std::map<MigrationKey, MigrationRecord> by_key(const std::vector<MigrationRecord>& all) {
  std::map<MigrationKey, MigrationRecord> out;
  for (const auto& m : all) out[{m.from_node, m.epoch}] = m;
  return out;
}

// What differs between the two stores now, or "" when they hold the same.
Result<std::string> difference(Store& from, Store& to) {
  auto nodes = from.list_nodes();
  if (!nodes) return nodes.error();
  auto to_nodes = to.list_nodes();
  if (!to_nodes) return to_nodes.error();
  if (*nodes != *to_nodes) {
    return fmt::format("nodes differ: {} in the source, {} in the destination", nodes->size(),
                       to_nodes->size());
  }
  for (const auto& node : *nodes) {
    auto a = read_node(from, node);
    if (!a) return a.error();
    auto b = read_node(to, node);
    if (!b) return b.error();
    if (a->records != b->records) return fmt::format("monitor records of node '{}' differ", node);
    if (a->locks != b->locks) return fmt::format("lock tables of node '{}' differ", node);
    if (a->fence != b->fence)
      return fmt::format("fences of node '{}' differ (epoch {} set by '{}' / epoch {} set by '{}')",
                         node, a->fence.epoch, a->fence.adopter, b->fence.epoch, b->fence.adopter);
  }
  auto ma = from.list_migrations();
  if (!ma) return ma.error();
  auto mb = to.list_migrations();
  if (!mb) return mb.error();
  if (by_key(*ma) != by_key(*mb)) return std::string("migration records differ");
  return std::string();
}

// Phase 1: what both stores list (nodes and migrations).
struct Listing {
  std::string src, dst;  // the stores' URLs, for messages
  std::vector<std::string> nodes, to_nodes;
  std::vector<MigrationRecord> migrations, to_migrations;
};

Result<Listing> list_both(Store& from, Store& to) {
  Listing l{from.url(), to.url(), {}, {}, {}, {}};
  auto nodes = from.list_nodes();
  if (!nodes) return make_error("reading the nodes of {}: {}", l.src, nodes.error().message);
  auto to_nodes = to.list_nodes();
  if (!to_nodes) return make_error("reading the nodes of {}: {}", l.dst, to_nodes.error().message);
  auto migrations = from.list_migrations();
  if (!migrations)
    return make_error("reading the migrations of {}: {}", l.src, migrations.error().message);
  auto to_migrations = to.list_migrations();
  if (!to_migrations)
    return make_error("reading the migrations of {}: {}", l.dst, to_migrations.error().message);
  l.nodes = std::move(*nodes);
  l.to_nodes = std::move(*to_nodes);
  l.migrations = std::move(*migrations);
  l.to_migrations = std::move(*to_migrations);
  return l;
}

// Phase 2: the destination holds no node or migration the source lacks.
Result<void> check_listing(const Listing& l) {
  const std::set<std::string> known(l.nodes.begin(), l.nodes.end());
  for (const auto& n : l.to_nodes) {
    if (!known.count(n))
      return make_error(
          "{} already holds node '{}', which {} does not have: copy into an empty "
          "store (or one that an earlier copy of this source filled)",
          l.dst, n, l.src);
  }
  const auto source_migrations = by_key(l.migrations);
  for (const auto& m : l.to_migrations) {
    if (!source_migrations.count({m.from_node, m.epoch}))
      return make_error(
          "{} already holds migration {}-{}, which {} does not have: copy into an "
          "empty store",
          l.dst, m.from_node, m.epoch, l.src);
  }
  return {};
}

// Phase 3: every node of both stores, read, and checked that the destination is not newer and
// holds no monitor record the source lacks.
struct Nodes {
  std::map<std::string, NodeState> source, dest;
};

Result<Nodes> read_nodes(Store& from, Store& to, const Listing& l) {
  Nodes out;
  for (const auto& node : l.nodes) {
    auto a = read_node(from, node);
    if (!a) return make_error("reading node '{}' of {}: {}", node, l.src, a.error().message);
    auto b = read_node(to, node);
    if (!b) return make_error("reading node '{}' of {}: {}", node, l.dst, b.error().message);
    if (b->fence.epoch > a->fence.epoch)
      return make_error(
          "node '{}' is at fencing epoch {} in {} but only {} in {}: the "
          "destination is newer than the source; refusing to copy",
          node, b->fence.epoch, l.dst, a->fence.epoch, l.src);
    const auto a_files = by_file(a->records);
    for (const auto& [name, lines] : by_file(b->records)) {
      if (!a_files.count(name))
        return make_error(
            "{} holds monitor record '{}' of node '{}', which {} does not have: "
            "copy into an empty store",
            l.dst, statmon::printable(name), node, l.src);
    }
    out.source[node] = std::move(*a);
    out.dest[node] = std::move(*b);
  }
  return out;
}

// Phase 4, per node: the monitor files and lock table that differ, then the fence raised to the
// source's epoch.
Result<void> copy_node(Store& to, const Listing& l, const std::string& node, const NodeState& a,
                       NodeState& b, CopyReport& report) {
  const auto b_files = by_file(b.records);
  bool wrote = false;
  for (const auto& [name, lines] : by_file(a.records)) {
    if (auto it = b_files.find(name); it != b_files.end() && it->second == lines) {
      ++report.unchanged;
      continue;
    }
    if (auto ok = to.put_monitor_file(lines); !ok)
      return make_error("copying monitor record '{}' of node '{}' into {}: {}",
                        statmon::printable(name), node, l.dst, ok.error().message);
    ++report.monitor_files;
    report.monitor_records += lines.size();
    wrote = true;
  }
  const bool listed = std::find(l.to_nodes.begin(), l.to_nodes.end(), node) != l.to_nodes.end();
  if (a.locks != b.locks || (!listed && !wrote && a.fence.epoch == 0)) {
    // A table's epoch is its locks' epoch; an empty one is written at the destination's
    // epoch (and makes a node that has nothing else exist there too).
    const std::uint64_t epoch = a.locks.empty() ? b.fence.epoch : a.locks.front().epoch;
    if (auto ok = to.put_locks(node, epoch, a.locks); !ok)
      return make_error("copying the lock table of node '{}' into {}: {}", node, l.dst,
                        ok.error().message);
    report.lock_records += a.locks.size();
  } else if (!a.locks.empty()) {
    ++report.unchanged;
  }
  while (b.fence.epoch < a.fence.epoch) {
    // The current epoch keeps its adopter (what an adopter decides by); the ones before it
    // are history, which the migration records keep.
    const bool last = b.fence.epoch + 1 == a.fence.epoch;
    auto bumped = to.bump_epoch(node, b.fence.epoch, last ? a.fence.adopter : std::string_view());
    if (!bumped)
      return make_error("raising the epoch of node '{}' in {} to {}: {}", node, l.dst,
                        a.fence.epoch, bumped.error().message);
    b.fence.epoch = *bumped;
    ++report.epoch_bumps;
  }
  return {};
}

// Phase 5: the migration records the destination lacks (or holds otherwise).
Result<void> copy_migrations(Store& to, const Listing& l, CopyReport& report) {
  const auto dest_migrations = by_key(l.to_migrations);
  for (const auto& m : l.migrations) {
    if (auto it = dest_migrations.find({m.from_node, m.epoch});
        it != dest_migrations.end() && it->second == m) {
      continue;
    }
    if (auto ok = to.put_migration(m); !ok)
      return make_error("copying migration {}-{} into {}: {}", m.from_node, m.epoch, l.dst,
                        ok.error().message);
    ++report.migrations;
  }
  return {};
}

// Phase 6: both stores read back and compared.
Result<void> verify(Store& from, Store& to, const Listing& l) {
  auto diff = difference(from, to);
  if (!diff) return make_error("verifying the copy: {}", diff.error().message);
  if (!diff->empty())
    return make_error(
        "the copy does not match its source: {} (did a lockferryd write to {} "
        "during the copy? stop them and run it again)",
        *diff, l.src);
  return {};
}

}  // namespace

Result<CopyReport> copy_store(Store& from, Store& to) {
  // Everything is read and checked before the first write: a destination that is not empty
  // and not an earlier copy of this source is refused untouched.
  auto listing = list_both(from, to);
  if (!listing) return listing.error();
  if (auto ok = check_listing(*listing); !ok) return ok.error();
  auto nodes = read_nodes(from, to, *listing);
  if (!nodes) return nodes.error();

  CopyReport report;
  report.nodes = listing->nodes.size();
  for (const auto& node : listing->nodes) {
    if (auto ok = copy_node(to, *listing, node, nodes->source[node], nodes->dest[node], report);
        !ok)
      return ok.error();
  }
  if (auto ok = copy_migrations(to, *listing, report); !ok) return ok.error();
  if (auto ok = verify(from, to, *listing); !ok) return ok.error();
  report.verified = true;
  spdlog::info(
      "copied {} to {}: {} nodes, {} monitor files ({} records), {} locks, {} epoch "
      "bumps, {} migrations, {} unchanged; verified",
      listing->src, listing->dst, report.nodes, report.monitor_files, report.monitor_records,
      report.lock_records, report.epoch_bumps, report.migrations, report.unchanged);
  return report;
}

}  // namespace lockferry::store
