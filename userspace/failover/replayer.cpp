// SPDX-License-Identifier: Apache-2.0
// Replay of monitor records into a statd monitor directory; see replayer.h.
#include "failover/replayer.h"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "common/files.h"
#include "statmon/record.h"

namespace lockferry::failover {
namespace {

// What statd 2.6.2 gives a new record (measured: tests/tools/README.md); sm-notify reads it as
// the directory's owner, which is why the owner is copied too.
constexpr mode_t kRecordMode = 0600;
constexpr std::size_t kMaxRecordBytes = 4096;

// The content to write for a record, re-validated: what comes out of the store is input too.
Result<std::string> record_content(const MonitorRecord& record) {
  if (auto r = statmon::check_file_name(record.file_name); !r) return r.error();
  std::string content = statmon::format_record(record);
  auto reparsed = statmon::parse_record(record.file_name, content);
  if (!reparsed) return reparsed.error();
  return content;
}

}  // namespace

Result<ReplayReport> replay(const std::vector<MonitorRecord>& records, const ReplayOptions& options) {
  struct stat dir_st {};
  if (::stat(options.statmon_dir.c_str(), &dir_st) != 0)
    return make_errno_error(errno, "statd monitor directory {} is not usable (is rpc.statd set up "
                            "on this node?)", options.statmon_dir);
  if (!S_ISDIR(dir_st.st_mode))
    return make_error("statd monitor directory {} is not a directory", options.statmon_dir);

  ReplayReport report;
  report.statmon_dir = options.statmon_dir;
  for (const auto& record : records) {
    ReplayEntry entry{record.file_name, record.mon_name, "", ""};
    auto content = record_content(record);
    if (!content) {
      entry.action = "refused";
      entry.reason = content.error().message;
      ++report.refused;
      spdlog::error("replay: refusing record {} of node {}: {}", record.file_name, record.node,
                    entry.reason);
      report.entries.push_back(std::move(entry));
      continue;
    }
    const std::string path = options.statmon_dir + "/" + record.file_name;
    auto existing = files::read_file_bounded(path, kMaxRecordBytes);
    if (existing && *existing == *content) {
      entry.action = "unchanged";
      ++report.unchanged;
      report.entries.push_back(std::move(entry));
      continue;
    }
    if (!options.dry_run) {
      auto written = files::write_file_atomically(options.statmon_dir, record.file_name, *content,
                                                  kRecordMode, files::Owner{dir_st.st_uid, dir_st.st_gid});
      if (!written) {
        entry.action = "refused";
        entry.reason = written.error().message;
        ++report.refused;
        spdlog::error("replay: could not write {}: {}", path, entry.reason);
        report.entries.push_back(std::move(entry));
        continue;
      }
    }
    entry.action = "written";
    ++report.written;
    spdlog::info("replay: {}{} (client {})", options.dry_run ? "would write " : "wrote ", path,
                 record.mon_name);
    report.entries.push_back(std::move(entry));
  }
  return report;
}

}  // namespace lockferry::failover
