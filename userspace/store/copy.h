// SPDX-License-Identifier: Apache-2.0
// Copying a whole store to another backend (`lockferry store migrate-data`): monitor records,
// lock tables, fencing epochs and migrations, then reading both back to prove the copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "store/store.h"

namespace lockferry::store {

struct CopyReport {
  std::size_t nodes = 0;
  std::size_t monitor_files = 0;    // statd files (put_monitor_file calls) written
  std::size_t monitor_records = 0;  // their lines
  std::size_t lock_records = 0;     // locks in the lock tables written
  std::size_t epoch_bumps = 0;      // bump_epoch calls to bring the destination's epochs level
  std::size_t migrations = 0;       // migration records written
  std::size_t unchanged = 0;        // files and lock tables already identical in the destination
  bool verified = false;            // both stores were read back and hold the same
};

// Copies everything in `from` into `to` and verifies it. The destination must be empty, or a
// (partial) earlier copy of the same source: a node whose epoch is ahead of the source's, a
// record or node the source does not have, refuses the copy before anything is written, so
// running it again after an interruption finishes the job. Records keep their own epochs; the
// destination's epochs are raised to the source's after the records are in (a record older
// than its node's epoch could not be written after). Stop lockferryd on every node first: a
// source that changes during the copy fails the verification (run it again).
Result<CopyReport> copy_store(Store& from, Store& to);

}  // namespace lockferry::store
