// SPDX-License-Identifier: Apache-2.0
// Recorder: turns changes in the watched monitor directories into monitor records in the store,
// and reconciles a whole directory with the store so a missed event never loses a record.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "capture/capture.h"
#include "store/store.h"

namespace lockferry::record {

// The monitor capture delivers these; the recorder turns them into monitor records.
using capture::FileChange;

struct RecorderStats {
  std::uint64_t records_written = 0;  // puts accepted by the store
  std::uint64_t records_deleted = 0;
  std::uint64_t bad_records = 0;   // files that are not valid statd records (kept out)
  std::uint64_t store_errors = 0;  // writes the store refused or failed
  std::uint64_t reconciles = 0;
  std::uint64_t reconcile_repairs = 0;   // differences a reconcile scan found and fixed
  std::uint64_t descriptor_retries = 0;  // reads retried because no descriptor was free
  bool fenced = false;                   // this node was adopted by another: no more writes
  std::string last_error;
};

class Recorder {
 public:
  // Every change is stored before on_change returns.
  Recorder(store::Store& store, std::string node, std::uint64_t epoch);
  // Group commit: a written file is read and queued, and everything queued is stored in one
  // store.put_monitor_files once `io` runs the flush posted behind the events the capture
  // delivered together, so a burst costs one sync round instead of one per record. Nothing is
  // acknowledged (stats, known, on_stored) before the store returned; queued records not yet
  // stored when the process exits are found again by the next reconcile scan.
  Recorder(store::Store& store, std::string node, std::uint64_t epoch, boost::asio::io_context& io);
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // One file changed: read and parse it, put (or queue) or delete its record.
  void on_change(const FileChange& change);

  // Store everything queued now (removals and reconcile scans call it first, to keep order).
  void flush();

  // Called once per monitor file each time its record(s) became durable in the store.
  using StoredHandler = std::function<void(const std::string& file_name)>;
  void set_on_stored(StoredHandler handler) { on_stored_ = std::move(handler); }

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
  // Stores the files that differ from what is known to be stored, as one batch (one by one if
  // the batch fails, so one bad file neither blocks nor hides the others). Returns how many
  // were stored.
  std::size_t put(std::vector<FileRecords> batch);
  void queue(FileRecords records);
  bool remove(const std::string& name);
  bool check_fenced(const Error& error);
  void stored(const FileRecords& records);
  void log_store_error(const std::string& name, const Error& error);
  // A read failed for want of a descriptor (EMFILE/ENFILE): that is not a bad file, and the
  // record must not wait for the next reconcile interval. Read it (or rescan `dirs`) again soon.
  void retry_later(const std::string& dir, const std::string& name, const Error& error);
  void retry_reconcile_later(const std::vector<std::string>& dirs, const Error& error);
  void arm_retry(const Error& error);
  void run_retries();

  store::Store& store_;
  std::string node_;
  std::uint64_t epoch_;
  boost::asio::io_context* io_ = nullptr;  // set: group commit
  RecorderStats stats_;
  StoredHandler on_stored_;
  // Group commit: files read but not stored yet, in arrival order, one entry per name.
  std::vector<FileRecords> pending_;
  std::map<std::string, std::size_t> pending_index_;
  bool flush_posted_ = false;
  // Guards the posted flush against running after this recorder is gone.
  std::shared_ptr<Recorder*> alive_;
  // What we last stored per file name, to keep first_seen and skip rewriting identical files.
  // A SHA-1 of the lines, not the lines: 100,000 records must not cost their text twice over.
  struct Known {
    std::array<unsigned, 5> digest{};  // of all lines
    std::uint64_t epoch = 0;
    std::int64_t first_seen_ns = 0;
  };
  static Known known_from(const FileRecords& records);
  std::map<std::string, Known> known_;
  // Out of descriptors: file name -> its directory, and the scan, to do again when the timer fires.
  std::map<std::string, std::string> retry_files_;
  std::vector<std::string> retry_dirs_;
  std::unique_ptr<boost::asio::steady_timer> retry_timer_;
  bool retry_armed_ = false;
  bool retry_logged_ = false;  // one warning per episode, not one per retry
};

}  // namespace lockferry::record
