// SPDX-License-Identifier: Apache-2.0
// The text of a dir:// lock table: a base document (the whole table, replaced atomically) and
// a journal of deltas appended to it, so a change writes only what changed.
//
//   <node>/locks.json                  {"format": 1, "node", "epoch", "written_ns",
//                                       "generation": "<16 hex>", "locks": [...]}
//   <node>/locks.<generation>.log      one delta per line: {"removed": [[dev, ino, owner,
//                                       start], ...], "put": [lock, ...]}
//
// A base names its journal by a random generation, so a new base (put_locks, or a compaction of
// base + journal) starts with an empty journal without touching the old one; a journal of any
// other generation is stale and ignored. A line is a delta only once its '\n' is written: a
// torn last line (a writer killed mid-append, or a reader racing an append) is not part of the
// table. Bases written before journals existed have no generation and no journal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lockferry/records.h"
#include "lockferry/result.h"
#include "store/lock_delta.h"

namespace lockferry::store {

struct LockTableBase {
  std::string generation;  // "" for a base without a journal (written before journals existed)
  std::vector<LockRecord> locks;
};

inline constexpr std::string_view kLockTableName = "locks.json";

// A fresh random generation (16 hex digits).
std::string new_lock_generation();
// "locks.<generation>.log"
std::string lock_journal_name(std::string_view generation);
// Whether `name` is a lock journal of any generation (for removing stale ones).
bool is_lock_journal_name(std::string_view name);

// The base document; one lock per line (the table can hold thousands, and stays greppable).
std::string format_lock_base(std::string_view node, std::uint64_t epoch,
                             std::string_view generation, const std::vector<LockRecord>& locks);
// Parses a base of `node` read from `path` (named in every error).
Result<LockTableBase> parse_lock_base(std::string_view text, const std::string& path,
                                      std::string_view node);

// One journal line, '\n' included.
std::string format_lock_delta(const LockDelta& delta);
// Applies every complete line of the journal `text` (read from `path`) to `table`, in order; a
// torn last line is skipped. A complete line that is not a valid delta of `node` is an error.
Result<void> apply_lock_journal(std::string_view text, const std::string& path,
                                std::string_view node, std::vector<LockRecord>& table);

}  // namespace lockferry::store
