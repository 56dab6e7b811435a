// SPDX-License-Identifier: Apache-2.0
// What the kernel itself says about the locks it holds: /proc/locks and the "lock:" lines of
// /proc/<pid>/fdinfo/<fd> (both printed by fs/locks.c lock_get_status), read into a
// KernelSnapshot that a reconcile of the lock table takes as the truth after lost events.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capture/lock_changes.h"
#include "lockferry/result.h"

namespace lockferry::capture {

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
// /proc/locks as the kernel prints it now.
Result<std::vector<ProcLock>> read_proc_locks(const std::string& path = "/proc/locks");

// Whether /proc/<pid>/stat says the process is a kernel thread (kernel lockd): it has no files,
// so fdinfo cannot show its locks.
bool is_kernel_thread(const std::string& proc_root, std::uint32_t pid);

// The POSIX and OFD locks the kernel holds for `managers` (pid -> comm), from the fdinfo of
// each of their open files (a file shows the process's POSIX locks taken through it and its own
// OFD locks). Kernel threads are left out of the snapshot's managers, as are processes whose
// files cannot be read (logged); a process that is gone is covered with no locks.
KernelSnapshot read_kernel_locks(const std::string& proc_root,
                                 const std::map<std::uint32_t, std::string>& managers);

}  // namespace lockferry::capture
