// SPDX-License-Identifier: Apache-2.0
// Recorder: file changes in monitor directories -> monitor records in the store; see recorder.h.
#include "record/recorder.h"

#include <dirent.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/uuid/detail/sha1.hpp>
#include <iterator>
#include <set>

#include "common/clock.h"
#include "common/files.h"
#include "common/log.h"
#include "statmon/file_names.h"
#include "statmon/record.h"

namespace lockferry::record {
namespace {

Result<std::vector<std::string>> list_record_names(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return make_errno_error(errno, "cannot read monitor directory {}", dir);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (statmon::is_hidden_name(name)) continue;
    names.push_back(std::move(name));
  }
  return names;
}

// Debian 12's statd (nfs-utils < 2.8.2) rewrites a record through "<name>.new" and renames it
// over <name>; a rescan can meet that file.
bool is_statd_temp_copy(const std::string& name, const std::vector<MonitorRecord>& records) {
  return !records.empty() && statmon::is_statd_temp_copy(name, records.front().mon_name);
}

bool is_out_of_descriptors(const Error& error) {
  return error.code == EMFILE || error.code == ENFILE;
}

// How soon a read that found no free descriptor is tried again.
constexpr auto kDescriptorRetry = std::chrono::milliseconds(200);

// Monitor files per store call: a batch keeps a descriptor per file open until its sync round,
// and a reconcile after a restart may find 100,000 files to store.
constexpr std::size_t kMaxBatch = 256;

}  // namespace

Recorder::Recorder(store::Store& store, std::string node, std::uint64_t epoch)
    : store_(store), node_(std::move(node)), epoch_(epoch) {}

Recorder::Recorder(store::Store& store, std::string node, std::uint64_t epoch,
                   boost::asio::io_context& io)
    : Recorder(store, std::move(node), epoch) {
  io_ = &io;
  alive_ = std::make_shared<Recorder*>(this);
  retry_timer_ = std::make_unique<boost::asio::steady_timer>(io);
}

void Recorder::retry_later(const std::string& dir, const std::string& name, const Error& error) {
  retry_files_[name] = dir;
  arm_retry(error);
}

void Recorder::retry_reconcile_later(const std::vector<std::string>& dirs, const Error& error) {
  retry_dirs_ = dirs;
  arm_retry(error);
}

void Recorder::arm_retry(const Error& error) {
  ++stats_.descriptor_retries;
  stats_.last_error = error.message;
  if (!retry_timer_) {
    // Without an event loop (one-shot use) there is nothing to wait on: the caller's next
    // reconcile finds the file.
    spdlog::error("out of file descriptors: {}; the next reconcile scan reads it", error.message);
    return;
  }
  if (!retry_logged_) {
    spdlog::warn(
        "out of file descriptors: {}; reading it again every {} ms until one is free "
        "(raise the open-file limit: LimitNOFILE=)",
        error.message, kDescriptorRetry.count());
    retry_logged_ = true;
  }
  if (retry_armed_) return;
  retry_armed_ = true;
  retry_timer_->expires_after(kDescriptorRetry);
  retry_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // cancelled: the recorder is gone
    retry_armed_ = false;
    run_retries();
  });
}

void Recorder::run_retries() {
  auto files = std::exchange(retry_files_, {});
  auto dirs = std::exchange(retry_dirs_, {});
  for (const auto& [name, dir] : files)
    on_change(FileChange{FileChange::Kind::written, dir, name, 0, "", 0});
  if (!dirs.empty()) (void)reconcile(dirs);  // logs its own errors, and retries EMFILE again
  if (retry_files_.empty() && retry_dirs_.empty() && retry_logged_) {
    spdlog::info(
        "file descriptors available again: {} monitor record(s) and {} scan(s) read "
        "after waiting for one",
        files.size(), dirs.empty() ? 0 : 1);
    retry_logged_ = false;
  }
}

Recorder::Known Recorder::known_from(const FileRecords& records) {
  Known k;
  boost::uuids::detail::sha1 sha;
  for (const auto& r : records) sha.process_bytes(r.raw.data(), r.raw.size());
  unsigned int digest[5];
  sha.get_digest(digest);
  std::copy(std::begin(digest), std::end(digest), k.digest.begin());
  if (!records.empty()) {
    k.epoch = records.front().epoch;
    k.first_seen_ns = records.front().first_seen_ns;
  }
  return k;
}

Result<Recorder::FileRecords> Recorder::load(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  auto content = files::read_file_bounded(path, statmon::kMaxFileBytes);
  if (!content) return content.error();
  auto records = statmon::parse_record_file(name, *content);
  if (!records) return records.error();
  for (auto& r : *records) {
    r.node = node_;
    r.epoch = epoch_;
    r.file_name = name;
  }
  return records;
}

bool Recorder::check_fenced(const Error& error) {
  if (error.code != store::kErrFenced) return false;
  if (!stats_.fenced) {
    spdlog::critical(
        "node {} was adopted by another node (fencing epoch moved past {}): {}. Not writing any "
        "more records; restart lockferryd once this node owns its NFS service again",
        node_, epoch_, error.message);
  }
  stats_.fenced = true;
  return true;
}

void Recorder::log_store_error(const std::string& name, const Error& error) {
  ++stats_.store_errors;
  stats_.last_error = error.message;
  log::error_limited("capture: could not store a monitor record",
                     "could not store monitor record {} of node {}: {} (the next reconcile scan "
                     "retries)",
                     statmon::printable(name), node_, error.message);
}

void Recorder::stored(const FileRecords& records) {
  const std::string& name = records.front().file_name;
  ++stats_.records_written;
  for (const auto& r : records) {
    spdlog::info("recorded monitor record {} (mon_name {}, my_name {})", statmon::printable(name),
                 statmon::printable(r.mon_name), statmon::printable(r.my_name));
  }
  known_[name] = known_from(records);
  if (on_stored_) on_stored_(name);
}

std::size_t Recorder::put(std::vector<FileRecords> batch) {
  if (stats_.fenced) return 0;
  const auto now = clock::now_ns();
  std::vector<FileRecords> todo;
  todo.reserve(batch.size());
  for (auto& records : batch) {
    if (records.empty()) continue;
    std::int64_t first_seen = now;
    if (auto it = known_.find(records.front().file_name); it != known_.end()) {
      const Known k = known_from(records);
      if (it->second.digest == k.digest && it->second.epoch == epoch_) continue;
      first_seen = it->second.first_seen_ns;
    }
    for (auto& r : records) {
      r.first_seen_ns = first_seen;
      r.last_seen_ns = now;
    }
    todo.push_back(std::move(records));
  }
  std::size_t done = 0;
  for (std::size_t at = 0; at < todo.size() && !stats_.fenced; at += kMaxBatch) {
    const auto end =
        todo.begin() + static_cast<std::ptrdiff_t>(std::min(todo.size(), at + kMaxBatch));
    std::vector<FileRecords> chunk(
        std::make_move_iterator(todo.begin() + static_cast<std::ptrdiff_t>(at)),
        std::make_move_iterator(end));
    auto result = store_.put_monitor_files(chunk);
    if (result) {
      for (const auto& records : chunk) stored(records);
      done += chunk.size();
      continue;
    }
    if (check_fenced(result.error())) break;
    if (chunk.size() == 1) {
      log_store_error(chunk.front().front().file_name, result.error());
      continue;
    }
    // One file the store refuses must not keep the others out, and its error must name it.
    for (const auto& records : chunk) {
      auto one = store_.put_monitor_file(records);
      if (one) {
        stored(records);
        ++done;
      } else if (check_fenced(one.error())) {
        break;
      } else {
        log_store_error(records.front().file_name, one.error());
      }
    }
  }
  return done;
}

void Recorder::queue(FileRecords records) {
  const std::string& name = records.front().file_name;
  if (auto it = pending_index_.find(name); it != pending_index_.end()) {
    pending_[it->second] = std::move(records);  // rewritten before it was stored: the newest wins
    return;
  }
  pending_index_.emplace(name, pending_.size());
  pending_.push_back(std::move(records));
  if (flush_posted_) return;
  flush_posted_ = true;
  // Runs after the handler delivering this event returns, i.e. after every event the capture
  // read together with it has been queued too.
  boost::asio::post(*io_, [weak = std::weak_ptr<Recorder*>(alive_)] {
    if (auto self = weak.lock()) {
      (*self)->flush_posted_ = false;
      (*self)->flush();
    }
  });
}

void Recorder::flush() {
  if (pending_.empty()) return;
  std::vector<FileRecords> batch = std::move(pending_);
  pending_.clear();
  pending_index_.clear();
  put(std::move(batch));
}

bool Recorder::remove(const std::string& name) {
  flush();  // a record queued before its removal must not be stored after it
  if (stats_.fenced) return false;
  auto result = store_.delete_monitor(node_, name, epoch_);
  if (!result) {
    if (!check_fenced(result.error())) {
      ++stats_.store_errors;
      stats_.last_error = result.error().message;
      log::error_limited("capture: could not delete a monitor record",
                         "could not delete monitor record {} of node {}: {} (the next reconcile "
                         "scan retries)",
                         statmon::printable(name), node_, result.error().message);
    }
    return false;
  }
  ++stats_.records_deleted;
  known_.erase(name);
  spdlog::info("monitor record {} removed (statd stopped monitoring it)", statmon::printable(name));
  return true;
}

void Recorder::on_change(const FileChange& change) {
  if (statmon::is_hidden_name(change.name)) return;
  if (change.kind == FileChange::Kind::removed) {
    retry_files_.erase(change.name);
    remove(change.name);
    return;
  }
  auto records = load(change.dir, change.name);
  if (!records) {
    if (records.error().code == ENOENT) {
      // Written then removed before we got to read it: the removal event follows.
      spdlog::debug("monitor record {}/{} vanished before it was read", change.dir, change.name);
      return;
    }
    if (is_out_of_descriptors(records.error())) {
      retry_later(change.dir, change.name, records.error());
      return;
    }
    ++stats_.bad_records;
    log::warn_limited("capture: ignoring a bad monitor record",
                      "ignoring {}/{} (written by {} pid {}): {}; records already stored are kept",
                      change.dir, statmon::printable(change.name),
                      change.comm.empty() ? "?" : change.comm, change.pid, records.error().message);
    return;
  }
  if (is_statd_temp_copy(change.name, *records) || records->empty()) return;
  if (io_ != nullptr) {
    queue(std::move(*records));
  } else {
    put({std::move(*records)});
  }
}

Result<std::size_t> Recorder::reconcile(const std::vector<std::string>& dirs) {
  ++stats_.reconciles;
  flush();
  // What the store holds first: after a restart it tells us first_seen and what not to rewrite.
  auto stored = store_.list_monitor(node_);
  if (!stored) {
    ++stats_.store_errors;
    stats_.last_error = stored.error().message;
    if (is_out_of_descriptors(stored.error())) retry_reconcile_later(dirs, stored.error());
    return stored.error();
  }
  std::map<std::string, FileRecords> stored_files;
  for (auto& record : *stored) stored_files[record.file_name].push_back(record);
  for (auto& [name, records] : stored_files) known_.try_emplace(name, known_from(records));

  std::set<std::string> on_disk;
  std::size_t repairs = 0;
  std::vector<FileRecords> changed_files;
  for (const auto& dir : dirs) {
    auto names = list_record_names(dir);
    if (!names) {
      if (is_out_of_descriptors(names.error())) retry_reconcile_later(dirs, names.error());
      spdlog::error("reconcile: {}", names.error().message);
      // Without a full view of the directories we must not delete anything from the store.
      return names.error();
    }
    for (const auto& name : *names) {
      if (!on_disk.insert(name).second) continue;
      auto records = load(dir, name);
      if (!records) {
        if (records.error().code == ENOENT) {
          on_disk.erase(name);
          continue;
        }
        if (is_out_of_descriptors(records.error())) {
          retry_later(dir, name, records.error());
          continue;  // stays in on_disk, like a bad file, until it can be read
        }
        ++stats_.bad_records;
        log::warn_limited("reconcile: ignoring a bad monitor record",
                          "reconcile: ignoring {}/{}: {}", dir, statmon::printable(name),
                          records.error().message);
        continue;  // stays in on_disk: a bad file must not delete the last good record
      }
      if (is_statd_temp_copy(name, *records)) {
        on_disk.erase(name);
        continue;
      }
      auto it = known_.find(name);
      bool changed = it == known_.end() || it->second.digest != known_from(*records).digest ||
                     it->second.epoch != epoch_;
      if (!changed || records->empty()) continue;
      changed_files.push_back(std::move(*records));
      if (changed_files.size() >= kMaxBatch) repairs += put(std::exchange(changed_files, {}));
    }
  }
  repairs += put(std::move(changed_files));
  for (const auto& [name, records] : stored_files) {
    if (on_disk.count(name) == 0 && remove(name)) ++repairs;
  }
  stats_.reconcile_repairs += repairs;
  if (repairs > 0) spdlog::info("reconcile: {} repairs made", repairs);
  return repairs;
}

}  // namespace lockferry::record
