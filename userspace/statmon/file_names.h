// SPDX-License-Identifier: Apache-2.0
// How statd names the files of its monitor directory besides records (nfs-utils
// support/nsm/file.c): which names are its temp files, so a watcher neither records nor
// removes them. lockferry's own temp files are another thing: files::is_atomic_write_temp_name.
#pragma once

#include <string>
#include <string_view>

namespace lockferry::statmon {

// A name statd never reads as a record: empty, ".", "..", or any dot file (nsm_load_dir skips
// them), which includes ".<name>.new", the temp file of nfs-utils >= 2.8.2 ("libnsm: safer
// atomic filenames").
bool is_hidden_name(std::string_view name);

// "<name>.new": how nfs-utils < 2.8.2 (e.g. Debian 12's 2.6.2) writes a record before renaming
// it over <name>. It may also be the real record of a client whose name ends in ".new": the
// caller tells them apart (O_EXCL at creation, or is_statd_temp_copy).
bool is_old_statd_temp_name(std::string_view name);

// Either of the above: a name statd writes and renames, or never reads.
bool is_statd_temp_name(std::string_view name);

// Whether `name` is old statd's "<mon_name>.new" copy of the record of `first_mon_name` (the
// mon_name of the first record the file holds): a real record never holds another name's record,
// since statd names each file after its mon_name.
bool is_statd_temp_copy(std::string_view name, const std::string& first_mon_name);

}  // namespace lockferry::statmon
