// SPDX-License-Identifier: Apache-2.0
// Parse and format statd monitor records exactly as nfs-utils (support/nsm/file.c) does.
#pragma once

#include <string>
#include <string_view>

#include "lockferry/records.h"
#include "lockferry/result.h"

namespace lockferry::statmon {

// Parse one record file's content (as read from <monitor dir>/<file_name>). Fills the statd
// fields and `raw`; leaves node/epoch/timestamps to the caller. Errors name the file and say
// what is wrong (empty, truncated, binary, wrong field count, non-hex field, bad name, ...).
Result<MonitorRecord> parse_record(std::string_view file_name, std::string_view content);

// The exact bytes rpc.statd would write for this record (one line with trailing newline).
// For a record that came from parse_record this equals `raw`.
std::string format_record(const MonitorRecord& record);

// Whether `name` is safe as a file name directly inside a monitor directory: non-empty, at most
// NAME_MAX bytes, no '/', no NUL or control characters, not "." or "..", no leading '.'
// (statd's own temp files are ".<name>.new"). Errors say why.
Result<void> check_file_name(std::string_view name);

// The file name rpc.statd uses for a record of mon_name, or an error if statd would refuse it.
Result<std::string> file_name_for(std::string_view mon_name);

}  // namespace lockferry::statmon
