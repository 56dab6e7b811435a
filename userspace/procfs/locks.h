// SPDX-License-Identifier: Apache-2.0
// Lock lines as the kernel prints them in /proc/locks and in the "lock:" lines of
// /proc/<pid>/fdinfo/<fd> (both from fs/locks.c lock_get_status).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockferry/records.h"

namespace lockferry::procfs {

// One lock line, e.g. "2: POSIX  ADVISORY  WRITE 26592 fe:00:10953175 5 14" or, in fdinfo,
// "lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:10953175 100 EOF".
struct ProcLock {
  std::uint64_t id = 0;
  bool waiting = false;   // "1: -> POSIX ...": a blocked request, not a held lock
  std::string kind;       // POSIX, OFDLCK, FLOCK, ACCESS, LEASE, DELEG, ...
  std::string type;       // READ, WRITE, UNLCK
  std::int64_t pid = 0;   // -1 for OFD locks (their owner is an open file)
  std::uint64_t dev = 0;  // kernel encoding (major << 20 | minor); /proc prints hex major:minor
  std::uint64_t ino = 0;
  std::uint64_t start = 0;
  std::uint64_t end = LockRecord::kToEndOfFile;  // "EOF" -> kToEndOfFile
  bool operator==(const ProcLock&) const = default;
};

// nullopt for a line that is not a lock line (or a lock without an inode).
std::optional<ProcLock> parse_proc_lock_line(std::string_view line);
// Every lock line of `text` (a /proc/locks or fdinfo file), others skipped.
std::vector<ProcLock> parse_proc_locks(std::string_view text);

}  // namespace lockferry::procfs
