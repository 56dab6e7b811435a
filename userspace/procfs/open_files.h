// SPDX-License-Identifier: Apache-2.0
// A process's open files as /proc/<pid>/fd and /proc/<pid>/fdinfo show them: which descriptors
// it has, what each one names, and the lock lines of each (its POSIX locks taken through that
// file and the file's own OFD locks).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lockferry/result.h"
#include "procfs/locks.h"

namespace lockferry::procfs {

// The descriptors of `pid`, ascending. The error's code is the errno: ENOENT or ESRCH when the
// process is gone, EACCES/EPERM when we may not look.
Result<std::vector<int>> list_fds(const std::string& proc_root, std::uint32_t pid);

struct FdLocks {
  int fd = -1;
  std::string path;             // the fd's target as /proc/<pid>/fd shows it ("" if unreadable)
  std::vector<ProcLock> locks;  // every lock line of its fdinfo
};

// The lock lines of one descriptor; no locks (and no path) when its fdinfo has none or the fd
// was closed meanwhile. An error (code = errno) when its fdinfo cannot be read: "cannot look"
// must never read as "holds no locks".
Result<FdLocks> read_fd_locks(const std::string& proc_root, std::uint32_t pid, int fd);

// Whether descriptors `a` and `b` of `pid` are the same open file (struct file), by kcmp(2);
// nullopt when kcmp cannot tell (not built into the kernel, or not permitted).
std::optional<bool> same_open_file(std::uint32_t pid, int a, int b);

}  // namespace lockferry::procfs
