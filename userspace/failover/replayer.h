// SPDX-License-Identifier: Apache-2.0
// Replayer: writes monitor records into the adoptive server's statd monitor directory exactly as
// rpc.statd would, merging with what is already there and never writing outside it.
#pragma once

#include <string>
#include <vector>

#include "lockferry/records.h"
#include "lockferry/result.h"

namespace lockferry::failover {

struct ReplayEntry {
  std::string file_name;
  std::string mon_name;
  std::string action;  // "written", "unchanged", "refused"
  std::string reason;  // why refused
};

struct ReplayReport {
  std::string statmon_dir;
  std::size_t written = 0;
  std::size_t unchanged = 0;
  std::size_t refused = 0;
  std::vector<ReplayEntry> entries;
};

struct ReplayOptions {
  std::string statmon_dir;  // e.g. /var/lib/nfs/sm; must exist
  bool dry_run = false;     // report what would be written, write nothing
};

// Writes each monitor file (the records sharing a file_name, as its lines) to
// <statmon_dir>/<file_name> (whole files only: a new name is linked in complete, an existing one
// replaced by rename; all synced at once before returning; owner and group of the directory
// — statd's user — so sm-notify, which drops privileges to that owner, can read and remove them).
// A record whose name would escape the directory or whose content is not a valid statd record is
// refused and reported; the others are still written. Fails only when the directory itself is
// unusable.
Result<ReplayReport> replay(const std::vector<MonitorRecord>& records,
                            const ReplayOptions& options);

}  // namespace lockferry::failover
