// SPDX-License-Identifier: Apache-2.0
// Checks and errors shared by every store backend; see record_checks.h.
#include "store/record_checks.h"

#include <fmt/format.h>

#include "statmon/record.h"
#include "store/store.h"

namespace lockferry::store {
namespace {

constexpr std::size_t kMaxNodeBytes = 200;

}  // namespace

Result<void> check_node_name(std::string_view node) {
  if (auto ok = statmon::check_file_name(node); !ok) {
    return make_error("bad node name: {}", ok.error().message);
  }
  if (node.size() > kMaxNodeBytes) {
    return make_error("bad node name '{}': {} bytes, at most {} allowed", statmon::printable(node),
                      node.size(), kMaxNodeBytes);
  }
  if (node == "migrations") return make_error("bad node name: 'migrations' is reserved");
  return {};
}

Result<void> check_stored_file_name(std::string_view file_name) {
  return statmon::check_file_name(file_name);
}

Result<void> check_lock(const LockRecord& lock) {
  if (lock.type != "read" && lock.type != "write")
    return make_error("lock type '{}' is neither read nor write", statmon::printable(lock.type));
  if (lock.start > lock.end)
    return make_error("lock range {}-{} ends before it starts", lock.start, lock.end);
  return {};
}

Error fenced(std::string_view node, std::uint64_t current, std::uint64_t held,
             std::string_view action) {
  return Error{fmt::format("{} refused: node '{}' was adopted (epoch {}) and this writer holds "
                           "epoch {}; it stops writing that node's records",
                           action, statmon::printable(node), current, held),
               kErrFenced};
}

Error epoch_moved(std::string_view node, std::uint64_t expected, std::uint64_t current,
                  std::string_view adopter) {
  return Error{
      fmt::format("cannot bump the epoch of node '{}' from {}: it is already {} ({} "
                  "adopted it first)",
                  statmon::printable(node), expected, current,
                  adopter.empty() ? std::string("another node") : statmon::printable(adopter)),
      kErrFenced};
}

Result<void> check_lock_table(std::string_view node, std::uint64_t epoch,
                              const std::vector<LockRecord>& locks) {
  if (auto ok = check_node_name(node); !ok) return ok.error();
  for (std::size_t i = 0; i < locks.size(); ++i) {
    const LockRecord& l = locks[i];
    if (l.node != node || l.epoch != epoch)
      return make_error("lock {} of the table for node '{}' names node '{}' epoch {}, not epoch {}",
                        i + 1, statmon::printable(node), statmon::printable(l.node), l.epoch,
                        epoch);
    if (auto ok = check_lock(l); !ok)
      return make_error("lock {} of node '{}': {}", i + 1, statmon::printable(node),
                        ok.error().message);
  }
  return {};
}

}  // namespace lockferry::store
