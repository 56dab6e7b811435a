// SPDX-License-Identifier: Apache-2.0
// Parse and format statd monitor records exactly as nfs-utils (support/nsm/file.c) does.
//
// One record file, <monitor dir>/<file_name>, holds one or more lines of seven fields:
//   <addr %08x> <prog %08x> <vers %08x> <proc %08x> <priv: 32 hex> <mon_name> <my_name>\n
// e.g. "0100007f 000186b5 00000004 00000010 <32 hex> 127.0.0.1 vm\n". Facts from nfs-utils:
// - addr is the NLM callback address, not the peer's: sm_mon_1_svc (utils/statd/monitor.c)
//   always passes 127.0.0.1, written as %08x of the in-memory s_addr, hence "0100007f" on
//   little-endian hosts. An IPv6 peer changes only mon_name (e.g. "fd00::2") and the file name.
// - the file name is statd_canonical_name(mon_name): the reverse-DNS name of a presentation
//   address (or the address itself when there is none), else the canonical DNS name.
// - a file holds several lines when different (mon_name, my_name) pairs map to the same file
//   name: nsm_insert_monitored_host appends, nsm_delete_host rewrites the rest, nsm_load_host
//   reads every line. Such a file must be replayed whole (format_record_file).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lockferry/records.h"
#include "lockferry/result.h"

namespace lockferry::statmon {

// SM_MAXSTRLEN: the NSM protocol's limit for mon_name and my_name.
inline constexpr std::size_t kMaxNameBytes = 1024;
// statd formats a line into char buf[LINELEN + 1 + SM_MAXSTRLEN + 2] (1096) and refuses lines
// that do not fit with their NUL, so no line it writes is longer than this, newline included.
inline constexpr std::size_t kMaxLineBytes = 1095;
// Bigger record files are refused outright (no real statd file comes close).
inline constexpr std::size_t kMaxFileBytes = 4096;
// NAME_MAX: a file name longer than this cannot exist in the monitor directory.
inline constexpr std::size_t kMaxFileNameBytes = 255;

// Parse a record file that holds exactly one line (what statd writes for nearly every peer).
// Fills the statd fields, `file_name` and `raw`; leaves node/epoch/timestamps to the caller.
// A file holding several lines is refused with a message pointing to parse_record_file.
// Errors name the file and say what is wrong (empty, truncated, binary, over-long, wrong field
// count, non-hex field, bad name, not UTF-8, ...).
Result<MonitorRecord> parse_record(std::string_view file_name, std::string_view content);

// Parse a whole record file: one MonitorRecord per line, in file order, each with its own line
// in `raw`. Any bad line fails the whole file (statd would silently skip it; we want to hear).
Result<std::vector<MonitorRecord>> parse_record_file(std::string_view file_name,
                                                     std::string_view content);

// The exact line rpc.statd writes for this record (trailing newline included). For a record
// that came from parse_record this equals `raw`.
std::string format_record(const MonitorRecord& record);

// The exact file content for records of one file, in order (format_record of each).
std::string format_record_file(const std::vector<MonitorRecord>& records);

// Whether every field of `record` is something statd could have written: names valid (see
// check_name), file_name valid, and `raw` either empty or equal to format_record(record).
Result<void> check_record(const MonitorRecord& record);

// Whether `name` is safe as a file name directly inside a monitor directory: non-empty, at most
// NAME_MAX bytes, valid UTF-8, no '/', no NUL, whitespace or control characters (statd's
// nsm_make_record_pathname refuses '/' and isspace()), not "." or "..", no leading '.'
// (statd skips those when loading, and its own temp files are ".<name>.new"). Errors say why.
Result<void> check_file_name(std::string_view name);

// Whether a mon_name or my_name (`what` says which, for the message) could be in a record:
// non-empty, at most kMaxNameBytes, valid UTF-8, no whitespace, NUL or control characters,
// no '/' and no leading '.' (statd refuses both in mon_name; we refuse them in my_name too,
// since no real host name has them and they are what path-escape attacks are made of).
Result<void> check_name(std::string_view what, std::string_view name);

// The file name rpc.statd uses for a record of `mon_name`, or an error if statd would refuse
// it. statd uses statd_canonical_name(mon_name), which needs DNS; offline the best answer is
// mon_name itself (exact for a presentation address without reverse DNS, and for a name that
// is already canonical). The capture side should use the name it actually saw.
Result<std::string> file_name_for(std::string_view mon_name);

// The callback address field as dotted IPv4 ("127.0.0.1" for statd's "0100007f" on this
// host), reinterpreting the value as statd did: the in-memory bytes of s_addr.
std::string callback_address(const MonitorRecord& record);

// The 16-byte priv cookie as the 32 lowercase hex digits statd writes, and back.
std::string priv_to_hex(const std::array<std::uint8_t, 16>& priv);
Result<std::array<std::uint8_t, 16>> priv_from_hex(std::string_view hex);

// A name made safe to print in a log line or message: non-printable bytes become \xNN and very
// long names are cut (hostile file names must not forge log lines). Unlike text::display_safe,
// which keeps valid UTF-8 for a person to read, this is ASCII only and also escapes ' and \,
// so a name quoted in an error message (which also travels in JSON answers and CLI output)
// reads back unambiguously; the fuzzer checks that property.
std::string printable(std::string_view name, std::size_t max_bytes = 80);

}  // namespace lockferry::statmon
