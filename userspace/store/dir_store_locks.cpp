// SPDX-License-Identifier: Apache-2.0
// DirStore's lock tables: a base document replaced whole (put_locks, compaction) and a journal
// of deltas appended to it (update_locks), so a batch of lock changes writes one short line and
// one fdatasync instead of the whole table. Formats in dir_lock_table.h.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/files.h"
#include "statmon/record.h"
#include "store/dir_lock_table.h"
#include "store/dir_store.h"
#include "store/record_checks.h"

namespace lockferry::store {
namespace {

// A lock table is one document for all of a node's locks (~300 bytes each), and its journal
// is compacted once it outgrows the base, so it is bounded the same way.
constexpr std::size_t kMaxLockTableBytes = 256 << 20;
// A journal is compacted into a new base once it is larger than the base and this.
constexpr std::size_t kMinJournalBytes = 64 << 10;
// A read that finds its base replaced while it read (a compaction) starts over; a writer
// compacts at most every kMinJournalBytes of changes, so a few attempts always suffice.
constexpr int kReadAttempts = 8;

Result<ino_t> inode_of(int dirfd, std::string_view name, const std::string& shown) {
  struct stat st {};
  if (::fstatat(dirfd, std::string(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return files::io_error(errno, fmt::format("cannot stat {}", shown));
  return st.st_ino;
}

}  // namespace

Result<void> DirStore::put_locks(std::string_view node, std::uint64_t epoch,
                                 const std::vector<LockRecord>& locks) {
  if (auto ok = check_lock_table(node, epoch, locks); !ok) return ok;
  const std::string action = "writing the lock table";
  if (auto ok = check_not_fenced(node, epoch, action); !ok) return ok;
  auto dirfd = open_dir(node, true);
  if (!dirfd) return dirfd.error();
  {
    std::lock_guard lock(locks_mu_);
    if (auto ok = write_lock_base(dirfd->get(), node, epoch, locks); !ok) return ok;
  }
  // A bump that raced with this write: the table landed, but the writer must learn now.
  return check_not_fenced(node, epoch, action);
}

Result<void> DirStore::update_locks(std::string_view node, std::uint64_t epoch,
                                    const LockDelta& delta) {
  if (auto ok = check_lock_table(node, epoch, delta.put); !ok) return ok;
  const std::string action = "writing the lock table";
  if (auto ok = check_not_fenced(node, epoch, action); !ok) return ok;
  if (delta.empty()) return {};
  auto dirfd = open_dir(node, true);
  if (!dirfd) return dirfd.error();
  {
    std::lock_guard lock(locks_mu_);
    auto appended = append_lock_delta(dirfd->get(), node, delta);
    if (!appended) return appended.error();
    if (!*appended) {
      // Base + journal + delta become a new base (with an empty journal).
      auto table = read_lock_table(dirfd->get(), node);
      if (!table) return table.error();
      apply_lock_delta(*table, delta);
      for (auto& l : *table) l.epoch = epoch;  // a base is one node at one epoch
      if (auto ok = write_lock_base(dirfd->get(), node, epoch, *table); !ok) return ok;
    }
  }
  return check_not_fenced(node, epoch, action);
}

Result<std::vector<LockRecord>> DirStore::list_locks(std::string_view node) {
  if (auto ok = check_node_name(node); !ok) return ok.error();
  auto dirfd = open_dir(node, false);
  if (!dirfd && dirfd.error().code == ENOENT) return std::vector<LockRecord>{};
  if (!dirfd) return dirfd.error();
  return read_lock_table(dirfd->get(), node);
}

Result<std::vector<LockRecord>> DirStore::read_lock_table(int dirfd, std::string_view node) {
  const std::string dir = node_dir(node);
  const std::string path = dir + "/" + std::string(kLockTableName);
  for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
    // The base's inode before it is read: a compaction replaces the base and then removes the
    // journal it replaced, so a journal missing after its base was read means "read again"
    // unless the base is still the one read.
    auto before = inode_of(dirfd, kLockTableName, path);
    if (!before && before.error().code == ENOENT) return std::vector<LockRecord>{};
    if (!before) return before.error();
    auto text =
        files::read_file_bounded_at(dirfd, std::string(kLockTableName), path, kMaxLockTableBytes);
    if (!text && text.error().code == ENOENT) continue;
    if (!text) return text.error();
    auto base = parse_lock_base(*text, path, node);
    if (!base) return base.error();
    if (base->generation.empty()) {
      sort_locks(base->locks);
      return std::move(base->locks);
    }
    const std::string journal_name = lock_journal_name(base->generation);
    const std::string journal_path = dir + "/" + journal_name;
    auto journal =
        files::read_file_bounded_at(dirfd, journal_name, journal_path, kMaxLockTableBytes);
    if (journal) {
      if (auto ok = apply_lock_journal(*journal, journal_path, node, base->locks); !ok)
        return ok.error();
      sort_locks(base->locks);
      return std::move(base->locks);
    }
    if (journal.error().code != ENOENT) return journal.error();
    auto after = inode_of(dirfd, kLockTableName, path);
    if (after && *after == *before) {  // no change since the base
      sort_locks(base->locks);
      return std::move(base->locks);
    }
  }
  return make_error("{}: the lock table was replaced {} times while it was read; try again", path,
                    kReadAttempts);
}

Result<void> DirStore::write_lock_base(int dirfd, std::string_view node, std::uint64_t epoch,
                                       const std::vector<LockRecord>& locks) {
  const std::string dir = node_dir(node);
  const std::string generation = new_lock_generation();
  const std::string text = format_lock_base(node, epoch, generation, locks);
  journals_.erase(std::string(node));
  if (auto ok = files::write_file_atomically_at(dirfd, dir, kLockTableName, text, kFileMode); !ok)
    return ok;
  auto ino = inode_of(dirfd, kLockTableName, dir + "/" + std::string(kLockTableName));
  if (!ino) return ino.error();
  journals_[std::string(node)] = LockJournal{*ino, generation, text.size()};
  remove_stale_journals(dirfd, node, generation);
  return {};
}

Result<bool> DirStore::append_lock_delta(int dirfd, std::string_view node, const LockDelta& delta) {
  const auto known = journals_.find(node);
  if (known == journals_.end()) return false;
  const LockJournal& journal = known->second;
  const std::string dir = node_dir(node);
  auto base = inode_of(dirfd, kLockTableName, dir + "/" + std::string(kLockTableName));
  if (!base && base.error().code != ENOENT) return base.error();
  if (!base || *base != journal.base_ino) return false;  // someone else wrote a base since
  const std::string name = lock_journal_name(journal.generation);
  const std::string path = dir + "/" + name;
  files::Fd fd(::openat(dirfd, name.c_str(), O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                        kFileMode));
  if (fd.get() < 0) return files::io_error(errno, fmt::format("cannot open {}", path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return files::io_error(errno, fmt::format("cannot stat {}", path));
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size > 0) {
    // A torn last line (a writer killed mid-append) is not part of the table; appending after
    // it would glue the next delta to it, so the table gets a new base instead.
    char last = 0;
    if (::pread(fd.get(), &last, 1, st.st_size - 1) != 1)
      return files::io_error(errno, fmt::format("cannot read {}", path));
    if (last != '\n') return false;
  }
  const std::string line = format_lock_delta(delta);
  if (size + line.size() > std::max(kMinJournalBytes, journal.base_bytes)) return false;
  if (const int err = files::write_all(fd.get(), line); err != 0)
    return files::io_error(err, fmt::format("cannot append to {}", path));
  if (::fdatasync(fd.get()) != 0)
    return files::io_error(errno, fmt::format("cannot sync {}", path));
  // The first line created the journal: its name must survive a crash too.
  if (size == 0 && ::fsync(dirfd) != 0)
    return files::io_error(errno, fmt::format("cannot sync {}", dir));
  return true;
}

void DirStore::remove_stale_journals(int dirfd, std::string_view node,
                                     std::string_view generation) {
  auto names = list_dir(node);
  if (!names) {
    spdlog::warn("dir store: cannot look for stale lock journals of node '{}': {}",
                 statmon::printable(node), names.error().message);
    return;
  }
  for (const auto& name : *names) {
    if (!is_lock_journal_name(name) || name == lock_journal_name(generation)) continue;
    // Harmless if it stays (no base names it), so a failure is only logged.
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT)
      spdlog::warn("dir store: cannot remove the stale lock journal {}/{}: {}", node_dir(node),
                   name, files::errno_name(errno));
  }
}

}  // namespace lockferry::store
