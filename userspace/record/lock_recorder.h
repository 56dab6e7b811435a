// SPDX-License-Identifier: Apache-2.0
// LockRecorder: applies lock grants and releases to the node's LockTable and writes what changed
// to the store, coalescing a burst of changes into one write at most every batch interval: the
// ranges added, changed or removed since the last accepted write (Store::update_locks), or the
// whole table (put_locks) when what the store holds is not known (first write, after an error).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "record/lock_table.h"
#include "store/store.h"

namespace lockferry::record {

struct LockRecorderStats {
  std::uint64_t grants = 0;             // grant changes applied
  std::uint64_t releases = 0;           // release changes applied
  std::uint64_t forgotten = 0;          // ranges forgotten because their manager process went away
  std::uint64_t reconciles = 0;         // kernel snapshots applied
  std::uint64_t reconcile_repairs = 0;  // ranges a reconcile added or removed (0 = table was exact)
  std::uint64_t reconcile_provisional = 0;  // owners a reconcile had to make up (see lock_table.h)
  std::uint64_t tables_written = 0;         // writes (whole table or delta) the store accepted
  std::uint64_t deltas_written = 0;         // of which update_locks with only the changes
  std::uint64_t ranges_written = 0;         // ranges those writes carried (put or removed)
  std::uint64_t store_errors = 0;
  bool fenced = false;  // this node was adopted by another: no more writes
  std::string last_error;
  std::int64_t last_write_ns = 0;  // CLOCK_REALTIME of the last accepted write
};

class LockRecorder {
 public:
  LockRecorder(boost::asio::io_context& io, store::Store& store, std::string node,
               std::uint64_t epoch,
               std::chrono::milliseconds batch = std::chrono::milliseconds(75));
  ~LockRecorder();
  LockRecorder(const LockRecorder&) = delete;
  LockRecorder& operator=(const LockRecorder&) = delete;

  // After a restart: takes the stored table back, keeping only locks whose manager process is
  // still alive with the same name (`manager_alive(pid, comm)`): their releases will be seen
  // from now on. Locks of managers that are gone were released by the kernel.
  Result<void> restore(const std::function<bool(std::uint32_t, const std::string&)>& manager_alive);

  void on_change(const LockChange& change);
  // Forgets what manager `pid` held. `exit_seen`: the capture sees the releases of an exit, so
  // anything left means lost events (warned and counted as forgotten); else the exit released it.
  void on_manager_gone(std::uint32_t pid, bool exit_seen = true);

  // Writes the table now if it changed since the last write (stop, tests, `lockferry locks`).
  void flush();
  // Cancels the pending write timer (the daemon calls flush() first).
  void stop();

  const LockTable& table() const { return table_; }
  const LockRecorderStats& stats() const { return stats_; }
  bool dirty() const { return dirty_; }

 private:
  void schedule(std::chrono::milliseconds delay);
  bool write();
  Result<void> write_changes(std::vector<LockRecord>& table);

  store::Store& store_;
  std::string node_;
  std::uint64_t epoch_;
  std::chrono::milliseconds batch_;
  boost::asio::steady_timer timer_;
  LockTable table_;
  // What the store holds (as of the last accepted write), ordered like table_.records(); valid
  // only while stored_known_.
  std::vector<LockRecord> stored_;
  bool stored_known_ = false;
  LockRecorderStats stats_;
  bool dirty_ = false;
  bool scheduled_ = false;
  bool stopped_ = false;
};

}  // namespace lockferry::record
