// SPDX-License-Identifier: Apache-2.0
// Replay of monitor records into a statd monitor directory; see replayer.h.
#include "failover/replayer.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "common/files.h"
#include "common/trusted_dirs.h"
#include "statmon/record.h"

namespace lockferry::failover {
namespace {

// What statd 2.6.2 gives a new record (measured: tests/tools/README.md); sm-notify reads it as
// the directory's owner, which is why the owner is copied too.
constexpr mode_t kRecordMode = 0600;

// The content to write for one monitor file (all its lines), re-validated: what comes out of the
// store is input too.
Result<std::string> file_content(const std::string& file_name,
                                 const std::vector<MonitorRecord>& records) {
  if (auto r = statmon::check_file_name(file_name); !r) return r.error();
  std::string content = statmon::format_record_file(records);
  auto reparsed = statmon::parse_record_file(file_name, content);
  if (!reparsed) return reparsed.error();
  return content;
}

enum class Created { yes, exists, unsupported };

// Creates <dir>/<name> with `content`, mode kRecordMode and `owner`, unsynced, only if the name
// does not exist. The file is written unnamed (O_TMPFILE) and linked in whole, so statd,
// sm-notify and a replay killed midway never leave or see an empty or partial record, and it
// costs 7 system calls against 11 for temp file + rename (no temp name, no per-file directory
// open). `unsupported`: this file system has no O_TMPFILE (NFS); the caller writes it the
// slower way.
Result<Created> create_record(int dirfd, const std::string& dir, const std::string& name,
                              const std::string& content, const struct stat& owner) {
  const std::string path = dir + "/" + name;
  const int fd = ::openat(dirfd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, kRecordMode);
  if (fd < 0) {
    // EISDIR: a kernel before 3.11 took O_TMPFILE for O_DIRECTORY.
    if (errno == EOPNOTSUPP || errno == EISDIR) return Created::unsupported;
    return make_errno_error(errno, "replay: cannot create {}: opening an unnamed file in {}", path,
                            dir);
  }
  files::Fd closer(fd);  // an unnamed file that is never linked disappears with its descriptor
  auto fail = [&](int err, std::string_view step) {
    return make_errno_error(
        err, "replay: cannot create {}: {}; check the owner and free space of {}", path, step, dir);
  };
  // openat's mode had the umask applied; sm-notify drops privileges to the directory's owner
  // and must be able to read the record.
  if (::fchmod(fd, kRecordMode) != 0) return fail(errno, "setting its mode");
  if (::fchown(fd, owner.st_uid, owner.st_gid) != 0) return fail(errno, "setting its owner");
  if (int err = files::write_all(fd, content); err != 0) return fail(err, "writing");
  // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc link to the descriptor does not.
  int err = ::linkat(fd, "", dirfd, name.c_str(), AT_EMPTY_PATH) == 0 ? 0 : errno;
  if (err == ENOENT || err == EPERM) {
    const std::string proc = fmt::format("/proc/self/fd/{}", fd);
    err = ::linkat(AT_FDCWD, proc.c_str(), dirfd, name.c_str(), AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
  }
  if (err == EEXIST) return Created::exists;
  if (err != 0) return fail(err, "linking it into the directory");
  return Created::yes;
}

// Makes everything written under `dirfd` durable: syncfs() writes back the file system's data
// and metadata (all the files at once), then fsync() of the directory for its entries.
Result<void> sync_directory_contents(int dirfd, const std::string& dir) {
  if (::syncfs(dirfd) != 0 || ::fsync(dirfd) != 0)
    return make_errno_error(errno,
                            "replay: records were written to {} but could not be synced to "
                            "disk; run the migration again",
                            dir);
  return {};
}

// The statd monitor directory, opened once for a whole replay.
struct StatmonDir {
  files::Fd fd;
  struct stat st {};
};

// One descriptor for the whole batch, opened link-free and checked like sshd's StrictModes
// (trusted_dirs.h): every record is created, read and replaced relative to it, and it is what
// syncfs + fsync make durable at the end. The directory's name is never resolved again: where
// its parent belongs to statd's user (RHEL's /var/lib/nfs/statd, Debian's /var/lib/nfs), that
// user may swap sm/ for a link at any moment, and resolving the name per record made root
// create and chown files wherever the link pointed.
Result<StatmonDir> open_statmon_dir(const std::string& statmon_dir) {
  auto opened = files::open_trusted_directory(statmon_dir, files::ParentOwners::or_its_owner);
  if (!opened)
    return Error{fmt::format("statd monitor directory {} is not usable: {}", statmon_dir,
                             opened.error().message),
                 opened.error().code};
  StatmonDir dir{std::move(*opened), {}};
  if (::fstat(dir.fd.get(), &dir.st) != 0)
    return make_errno_error(errno, "cannot stat statd monitor directory {}", statmon_dir);
  return dir;
}

// One monitor file (all its lines): created, left unchanged, replaced, or refused; the outcome
// goes into `report`.
void replay_file(const StatmonDir& dir, const ReplayOptions& options, const std::string& file_name,
                 const std::vector<MonitorRecord>& lines, ReplayReport& report) {
  ReplayEntry entry{file_name, lines.front().mon_name, "", ""};
  auto refuse = [&](std::string reason) {
    entry.action = "refused";
    entry.reason = std::move(reason);
    ++report.refused;
    spdlog::error("replay: refusing monitor record {} of node {}: {}",
                  statmon::printable(file_name), lines.front().node, entry.reason);
    report.entries.push_back(std::move(entry));
  };
  auto content = file_content(file_name, lines);
  if (!content) return refuse(content.error().message);
  const std::string path = options.statmon_dir + "/" + file_name;
  // The adoptive node's directory usually lacks the record: create it directly (the common
  // case, and the one that must be fast); otherwise compare and replace it whole.
  struct stat st {};
  const bool absent =
      ::fstatat(dir.fd.get(), file_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT;
  Created created = Created::unsupported;
  if (absent && !options.dry_run) {
    auto made = create_record(dir.fd.get(), options.statmon_dir, file_name, *content, dir.st);
    if (!made) return refuse(made.error().message);
    created = *made;
  }
  // Compare what is there unless we just created it or know it is absent; Created::exists:
  // someone (statd) wrote it since the fstatat.
  if (created != Created::yes && (!absent || created == Created::exists)) {
    auto existing =
        files::read_file_bounded_at(dir.fd.get(), file_name, path, statmon::kMaxFileBytes);
    if (existing && *existing == *content) {
      entry.action = "unchanged";
      ++report.unchanged;
      report.entries.push_back(std::move(entry));
      return;
    }
  }
  if (created != Created::yes && !options.dry_run) {
    // Unsynced here, synced all at once below: one fsync per file and per rename made 10,000
    // records take ~100 s on a disk where an fsync costs ~5 ms (docs/performance.md).
    auto written =
        files::write_file_atomically_at(dir.fd.get(), options.statmon_dir, file_name, *content,
                                        kRecordMode, files::Owner{dir.st.st_uid, dir.st.st_gid},
                                        /*fsync_dir=*/false, /*fsync_file=*/false);
    if (!written) return refuse(written.error().message);
  }
  entry.action = "written";
  ++report.written;
  // Debug, not info: one line per record made a 10,000-record migration log 10,000 lines; the
  // report lists every entry and migrate logs the totals.
  spdlog::debug("replay: {}{} (client {})", options.dry_run ? "would write " : "wrote ", path,
                statmon::printable(entry.mon_name));
  report.entries.push_back(std::move(entry));
}

}  // namespace

Result<ReplayReport> replay(const std::vector<MonitorRecord>& records,
                            const ReplayOptions& options) {
  auto dir = open_statmon_dir(options.statmon_dir);
  if (!dir) return dir.error();
  // statd keeps every (mon_name, my_name) that maps to one file as a line of that file; a file
  // is written whole, never line over line.
  std::map<std::string, std::vector<MonitorRecord>> by_file;
  for (const auto& record : records) by_file[record.file_name].push_back(record);

  ReplayReport report;
  report.statmon_dir = options.statmon_dir;
  for (const auto& [file_name, lines] : by_file)
    replay_file(*dir, options, file_name, lines, report);
  // Every record must be durable before sm-notify tells clients to reclaim (the caller's next
  // step). A machine crash before this point may leave empty files (the data was not written
  // back yet); running the migration again rewrites them, as it rewrites any file whose content
  // differs. A killed process leaves only whole files: each was linked in complete.
  if (report.written > 0 && !options.dry_run) {
    if (auto synced = sync_directory_contents(dir->fd.get(), options.statmon_dir); !synced)
      return synced.error();
  }
  return report;
}

}  // namespace lockferry::failover
