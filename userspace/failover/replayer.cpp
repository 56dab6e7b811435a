// SPDX-License-Identifier: Apache-2.0
// Replay of monitor records into a statd monitor directory; see replayer.h.
#include "failover/replayer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include <spdlog/spdlog.h>

#include "common/files.h"
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

// Makes everything written under `dir` durable: syncfs() writes back the file system's data
// and metadata (all the files at once), then fsync() of `dir` for its entries.
Result<void> sync_directory_contents(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_errno_error(errno, "replay: cannot open {} to sync the records written", dir);
  const bool ok = ::syncfs(fd) == 0 && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok)
    return make_errno_error(err, "replay: records were written to {} but could not be synced to disk; "
                            "run the migration again", dir);
  return {};
}

}  // namespace

Result<ReplayReport> replay(const std::vector<MonitorRecord>& records, const ReplayOptions& options) {
  struct stat dir_st {};
  if (::stat(options.statmon_dir.c_str(), &dir_st) != 0)
    return make_errno_error(errno, "statd monitor directory {} is not usable (is rpc.statd set up "
                            "on this node?)", options.statmon_dir);
  if (!S_ISDIR(dir_st.st_mode))
    return make_error("statd monitor directory {} is not a directory", options.statmon_dir);

  // statd keeps every (mon_name, my_name) that maps to one file as a line of that file; a file
  // is written whole, never line over line.
  std::map<std::string, std::vector<MonitorRecord>> by_file;
  for (const auto& record : records) by_file[record.file_name].push_back(record);

  ReplayReport report;
  report.statmon_dir = options.statmon_dir;
  for (const auto& file : by_file) {
    // Not a structured binding: the lambda below captures these, which clang < 16 refuses.
    const std::string& file_name = file.first;
    const std::vector<MonitorRecord>& lines = file.second;
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
    if (!content) {
      refuse(content.error().message);
      continue;
    }
    const std::string path = options.statmon_dir + "/" + file_name;
    auto existing = files::read_file_bounded(path, statmon::kMaxFileBytes);
    if (existing && *existing == *content) {
      entry.action = "unchanged";
      ++report.unchanged;
      report.entries.push_back(std::move(entry));
      continue;
    }
    if (!options.dry_run) {
      // Unsynced here, synced all at once below: one fsync per file and per rename made 10,000
      // records take ~100 s on a disk where an fsync costs ~5 ms (docs/performance.md).
      auto written = files::write_file_atomically(options.statmon_dir, file_name, *content,
                                                  kRecordMode, files::Owner{dir_st.st_uid, dir_st.st_gid},
                                                  /*fsync_dir=*/false, /*fsync_file=*/false);
      if (!written) {
        refuse(written.error().message);
        continue;
      }
    }
    entry.action = "written";
    ++report.written;
    spdlog::info("replay: {}{} (client {})", options.dry_run ? "would write " : "wrote ", path,
                 statmon::printable(entry.mon_name));
    report.entries.push_back(std::move(entry));
  }
  // Every record must be durable before sm-notify tells clients to reclaim (the caller's next
  // step). A crash before this point may leave empty files; running the migration again
  // rewrites them, as it rewrites any file whose content differs.
  if (report.written > 0) {
    if (auto synced = sync_directory_contents(options.statmon_dir); !synced) return synced.error();
  }
  return report;
}

}  // namespace lockferry::failover
