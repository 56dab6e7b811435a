// SPDX-License-Identifier: Apache-2.0
// The checks every store backend applies before it writes, and the fencing error they all
// return, so that a record refused by one backend is refused by all with the same words.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "lockferry/records.h"
#include "lockferry/result.h"

namespace lockferry::store {

// A node name becomes a directory in a dir:// store: a statd-safe file name, at most 200
// bytes, and not the reserved "migrations".
Result<void> check_node_name(std::string_view node);

// A monitor record's file name: statd-safe, up to NAME_MAX (255 bytes) like every name statd
// can write; every backend keeps all of them (dir:// encodes the long ones, dir_store.h).
Result<void> check_stored_file_name(std::string_view file_name);

// A lock record: type read or write, start <= end.
Result<void> check_lock(const LockRecord& lock);

// The locks of one write of `node`'s lock table (a whole table, or a delta's put ranges): every
// one of `node` at `epoch`, and valid (check_lock).
Result<void> check_lock_table(std::string_view node, std::uint64_t epoch,
                              const std::vector<LockRecord>& locks);

// kErrFenced: `action` by a writer holding epoch `held` of `node`, now at epoch `current`.
Error fenced(std::string_view node, std::uint64_t current, std::uint64_t held,
             std::string_view action);

// kErrFenced: bump_epoch(node, expected, ...) lost the compare-and-set; the epoch is `current`,
// set by `adopter` (empty: unknown).
Error epoch_moved(std::string_view node, std::uint64_t expected, std::uint64_t current,
                  std::string_view adopter);

}  // namespace lockferry::store
