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

}  // namespace

Result<CopyReport> copy_store(Store& from, Store& to) {
  const std::string src = from.url();
  const std::string dst = to.url();
  auto nodes = from.list_nodes();
  if (!nodes) return make_error("reading the nodes of {}: {}", src, nodes.error().message);
  auto to_nodes = to.list_nodes();
  if (!to_nodes) return make_error("reading the nodes of {}: {}", dst, to_nodes.error().message);
  auto migrations = from.list_migrations();
  if (!migrations)
    return make_error("reading the migrations of {}: {}", src, migrations.error().message);
  auto to_migrations = to.list_migrations();
  if (!to_migrations)
    return make_error("reading the migrations of {}: {}", dst, to_migrations.error().message);

  // Everything is read and checked before the first write: a destination that is not empty
  // and not an earlier copy of this source is refused untouched.
  const std::set<std::string> known(nodes->begin(), nodes->end());
  for (const auto& n : *to_nodes) {
    if (!known.count(n))
      return make_error(
          "{} already holds node '{}', which {} does not have: copy into an empty "
          "store (or one that an earlier copy of this source filled)",
          dst, n, src);
  }
  const auto source_migrations = by_key(*migrations);
  for (const auto& m : *to_migrations) {
    if (!source_migrations.count({m.from_node, m.epoch}))
      return make_error(
          "{} already holds migration {}-{}, which {} does not have: copy into an "
          "empty store",
          dst, m.from_node, m.epoch, src);
  }
  std::map<std::string, NodeState> source, dest;
  for (const auto& node : *nodes) {
    auto a = read_node(from, node);
    if (!a) return make_error("reading node '{}' of {}: {}", node, src, a.error().message);
    auto b = read_node(to, node);
    if (!b) return make_error("reading node '{}' of {}: {}", node, dst, b.error().message);
    if (b->fence.epoch > a->fence.epoch)
      return make_error(
          "node '{}' is at fencing epoch {} in {} but only {} in {}: the "
          "destination is newer than the source; refusing to copy",
          node, b->fence.epoch, dst, a->fence.epoch, src);
    const auto a_files = by_file(a->records);
    for (const auto& [name, lines] : by_file(b->records)) {
      if (!a_files.count(name))
        return make_error(
            "{} holds monitor record '{}' of node '{}', which {} does not have: "
            "copy into an empty store",
            dst, statmon::printable(name), node, src);
    }
    source[node] = std::move(*a);
    dest[node] = std::move(*b);
  }

  CopyReport report;
  report.nodes = nodes->size();
  for (const auto& node : *nodes) {
    const NodeState& a = source[node];
    NodeState& b = dest[node];
    const auto b_files = by_file(b.records);
    bool wrote = false;
    for (const auto& [name, lines] : by_file(a.records)) {
      if (auto it = b_files.find(name); it != b_files.end() && it->second == lines) {
        ++report.unchanged;
        continue;
      }
      if (auto ok = to.put_monitor_file(lines); !ok)
        return make_error("copying monitor record '{}' of node '{}' into {}: {}",
                          statmon::printable(name), node, dst, ok.error().message);
      ++report.monitor_files;
      report.monitor_records += lines.size();
      wrote = true;
    }
    const bool listed = std::find(to_nodes->begin(), to_nodes->end(), node) != to_nodes->end();
    if (a.locks != b.locks || (!listed && !wrote && a.fence.epoch == 0)) {
      // A table's epoch is its locks' epoch; an empty one is written at the destination's
      // epoch (and makes a node that has nothing else exist there too).
      const std::uint64_t epoch = a.locks.empty() ? b.fence.epoch : a.locks.front().epoch;
      if (auto ok = to.put_locks(node, epoch, a.locks); !ok)
        return make_error("copying the lock table of node '{}' into {}: {}", node, dst,
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
        return make_error("raising the epoch of node '{}' in {} to {}: {}", node, dst,
                          a.fence.epoch, bumped.error().message);
      b.fence.epoch = *bumped;
      ++report.epoch_bumps;
    }
  }
  const auto dest_migrations = by_key(*to_migrations);
  for (const auto& m : *migrations) {
    if (auto it = dest_migrations.find({m.from_node, m.epoch});
        it != dest_migrations.end() && it->second == m) {
      continue;
    }
    if (auto ok = to.put_migration(m); !ok)
      return make_error("copying migration {}-{} into {}: {}", m.from_node, m.epoch, dst,
                        ok.error().message);
    ++report.migrations;
  }

  auto diff = difference(from, to);
  if (!diff) return make_error("verifying the copy: {}", diff.error().message);
  if (!diff->empty())
    return make_error(
        "the copy does not match its source: {} (did a lockferryd write to {} "
        "during the copy? stop them and run it again)",
        *diff, src);
  report.verified = true;
  spdlog::info(
      "copied {} to {}: {} nodes, {} monitor files ({} records), {} locks, {} epoch "
      "bumps, {} migrations, {} unchanged; verified",
      src, dst, report.nodes, report.monitor_files, report.monitor_records, report.lock_records,
      report.epoch_bumps, report.migrations, report.unchanged);
  return report;
}

}  // namespace lockferry::store
