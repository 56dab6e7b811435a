// SPDX-License-Identifier: Apache-2.0
// Recorder: turns changes in the watched monitor directories into monitor records in the store,
// and reconciles a whole directory with the store so a missed event never loses a record.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "capture/capture.h"
#include "store/store.h"

namespace lockferry::capture {

struct RecorderStats {
  std::uint64_t records_written = 0;   // puts accepted by the store
  std::uint64_t records_deleted = 0;
  std::uint64_t bad_records = 0;       // files that are not valid statd records (kept out)
  std::uint64_t store_errors = 0;      // writes the store refused or failed
  std::uint64_t reconciles = 0;
  std::uint64_t reconcile_repairs = 0; // differences a reconcile scan found and fixed
  bool fenced = false;                 // this node was adopted by another: no more writes
  std::string last_error;
};

class Recorder {
 public:
  Recorder(store::Store& store, std::string node, std::uint64_t epoch);

  // One file changed: read and parse it, put or delete its record.
  void on_change(const FileChange& change);

  // Make the store match the files in `dirs` exactly (names present in none of them are deleted).
  // Returns the number of repairs (puts + deletes) made.
  Result<std::size_t> reconcile(const std::vector<std::string>& dirs);

  const RecorderStats& stats() const { return stats_; }
  const std::string& node() const { return node_; }
  std::uint64_t epoch() const { return epoch_; }

 private:
  // One monitor file: statd appends a line per (mon_name, my_name) that maps to the same file.
  using FileRecords = std::vector<MonitorRecord>;

  // Reads and parses dir/name (every line). A bad file is logged and counted, and leaves the
  // store alone so the last good version of that record is kept.
  Result<FileRecords> load(const std::string& dir, const std::string& name);
  bool put(FileRecords records);
  bool remove(const std::string& name);
  bool check_fenced(const Error& error);

  store::Store& store_;
  std::string node_;
  std::uint64_t epoch_;
  RecorderStats stats_;
  // What we last stored per file name, to keep first_seen and skip rewriting identical files.
  struct Known {
    std::string raw;  // all lines
    std::uint64_t epoch = 0;
    std::int64_t first_seen_ns = 0;
  };
  static Known known_from(const FileRecords& records);
  std::map<std::string, Known> known_;
};

}  // namespace lockferry::capture
