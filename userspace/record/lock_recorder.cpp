// SPDX-License-Identifier: Apache-2.0
// LockRecorder: lock changes -> LockTable -> batched writes of what changed; see lock_recorder.h.
#include "record/lock_recorder.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/clock.h"
#include "common/log.h"

namespace lockferry::record {

namespace {
// After a failed write the table is retried on its own, not only at the next change.
constexpr std::chrono::milliseconds kRetryAfterError{1000};
}  // namespace

LockRecorder::LockRecorder(boost::asio::io_context& io, store::Store& store, std::string node,
                           std::uint64_t epoch, std::chrono::milliseconds batch)
    : store_(store), node_(std::move(node)), epoch_(epoch), batch_(batch), timer_(io) {}

LockRecorder::~LockRecorder() { stop(); }

Result<void> LockRecorder::restore(
    const std::function<bool(std::uint32_t, const std::string&)>& manager_alive) {
  auto stored = store_.list_locks(node_);
  if (!stored) return stored.error();
  std::vector<LockRecord> kept;
  for (const auto& r : *stored)
    if (manager_alive(r.manager_pid, r.manager_comm)) kept.push_back(r);
  table_.restore(kept);
  const std::size_t stored_count = stored->size();
  // What the store holds now, so the first write is a delta. Two ranges with one key (a table
  // not written by a recorder) cannot be diffed: the first write is then the whole table.
  stored_ = std::move(*stored);
  std::sort(stored_.begin(), stored_.end(), [](const LockRecord& a, const LockRecord& b) {
    return store::key_of(a) < store::key_of(b);
  });
  stored_known_ = std::adjacent_find(stored_.begin(), stored_.end(),
                                     [](const LockRecord& a, const LockRecord& b) {
                                       return store::key_of(a) == store::key_of(b);
                                     }) == stored_.end();
  if (kept.size() != stored_count) {
    spdlog::info(
        "locks: {} of {} stored locks belonged to lock managers that are gone; forgetting them",
        stored_count - kept.size(), stored_count);
    dirty_ = true;
    schedule(std::chrono::milliseconds(0));
  }
  if (!kept.empty())
    spdlog::info("locks: kept {} stored locks of running lock managers", kept.size());
  return {};
}

void LockRecorder::on_change(const LockChange& change) {
  if (change.kind == LockChange::Kind::reconciled) {
    if (!change.snapshot) return;
    const ReconcileResult r = table_.reconcile(*change.snapshot);
    ++stats_.reconciles;
    stats_.reconcile_repairs += r.repairs();
    stats_.reconcile_provisional += r.provisional;
    if (r.repairs() == 0) return;
    spdlog::warn("locks: reconcile with the kernel's locks added {} and removed {} lock range(s)",
                 r.added, r.removed);
    dirty_ = true;
    schedule(batch_);
    return;
  }
  if (change.kind == LockChange::Kind::granted)
    ++stats_.grants;
  else
    ++stats_.releases;
  table_.apply(change);
  dirty_ = true;
  schedule(batch_);
}

void LockRecorder::on_manager_gone(std::uint32_t pid, bool exit_seen) {
  const std::size_t n = table_.drop_manager(pid);
  if (n == 0) return;
  dirty_ = true;
  schedule(batch_);
  if (!exit_seen) {
    spdlog::info("locks: lock manager pid {} exited; the kernel released its {} lock range(s)", pid,
                 n);
    return;
  }
  // Normally its releases were seen before it disappeared; leftovers mean events were lost.
  log::warn_limited("locks: forgetting the locks of a lock manager that is gone",
                    "locks: forgetting {} lock range(s) of lock manager pid {}, which is gone", n,
                    pid);
  stats_.forgotten += n;
}

void LockRecorder::schedule(std::chrono::milliseconds delay) {
  if (scheduled_ || stopped_ || stats_.fenced) return;
  scheduled_ = true;
  timer_.expires_after(delay);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled by stop(): `this` may be gone
    scheduled_ = false;
    if (dirty_ && !write()) schedule(kRetryAfterError);
  });
}

void LockRecorder::flush() {
  if (dirty_) write();
}

bool LockRecorder::write() {
  if (stats_.fenced) return false;
  auto table = table_.records(node_, epoch_);
  auto result = write_changes(table);
  if (!result) {
    stored_known_ = false;  // the store may hold the old table, the new one, or a queued one
    if (result.error().code == store::kErrFenced) {
      if (!stats_.fenced)
        spdlog::critical(
            "node {} was adopted by another node (fencing epoch moved past {}): {}. Not "
            "writing its lock table any more",
            node_, epoch_, result.error().message);
      stats_.fenced = true;
      return false;
    }
    ++stats_.store_errors;
    stats_.last_error = result.error().message;
    spdlog::error("locks: could not store the lock table of node {}: {} (retrying)", node_,
                  result.error().message);
    return false;
  }
  stored_ = std::move(table);
  stored_known_ = true;
  dirty_ = false;
  ++stats_.tables_written;
  stats_.last_write_ns = clock::now_ns();
  spdlog::debug("locks: stored the lock table of node {} ({} locks)", node_, table_.size());
  return true;
}

Result<void> LockRecorder::write_changes(std::vector<LockRecord>& table) {
  if (!stored_known_) {
    stats_.ranges_written += table.size();
    return store_.put_locks(node_, epoch_, table);
  }
  const store::LockDelta delta = store::diff_locks(stored_, table);
  if (delta.empty()) return {};
  ++stats_.deltas_written;
  stats_.ranges_written += delta.size();
  return store_.update_locks(node_, epoch_, delta);
}

void LockRecorder::stop() {
  stopped_ = true;
  scheduled_ = false;
  timer_.cancel();
}

}  // namespace lockferry::record
