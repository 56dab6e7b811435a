// SPDX-License-Identifier: Apache-2.0
// Whether a process named like a lock manager really is one. A process name (comm) is chosen by
// the process itself (prctl, exec of any file so named): any local user can call a process
// "ganesha.nfsd" or "lockd". Only these count: kernel lockd is a kernel thread, which no user
// process can become; NFS-Ganesha runs as root from its installed binary.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lockferry::capture {

// Where NFS-Ganesha's distributions install it (merged /usr and not, and a local build).
inline const std::vector<std::string> kDefaultManagerBinaries{
    "/usr/bin/ganesha.nfsd", "/usr/sbin/ganesha.nfsd", "/usr/local/bin/ganesha.nfsd"};

// The fields of /proc/<pid>/stat this module needs.
struct ProcStat {
  std::uint32_t ppid = 0;
  std::uint64_t flags = 0;  // task->flags: PF_KTHREAD is 0x00200000
  bool kernel_thread() const;
};
// nullopt when the process is gone or the file cannot be parsed.
std::optional<ProcStat> read_proc_stat(const std::string& proc_root, std::uint32_t pid);

// Who a process is, as /proc says.
struct ProcessIdentity {
  std::uint32_t pid = 0;
  bool exists = false;         // /proc/<pid>/stat could be read
  bool kernel_thread = false;  // PF_KTHREAD
  std::uint32_t ppid = 0;
  std::optional<std::uint32_t> uid;   // real uid, from status "Uid:"
  std::optional<std::uint32_t> euid;  // effective uid
  std::string exe;                    // readlink of /proc/<pid>/exe ("" when unreadable)
  int exe_error = 0;                  // errno of that readlink
  std::optional<std::pair<dev_t, ino_t>> exe_file;  // stat() through /proc/<pid>/exe
};
ProcessIdentity read_process_identity(const std::string& proc_root, std::uint32_t pid);

// Empty when `p` is a lock manager: a kernel thread, or a process whose real and effective uid
// are 0 and whose executable is one of `binaries` (the same path, " (deleted)" after a package
// upgrade included, or the same file). Otherwise why it is not, e.g. "runs as uid 65534, not
// root", for the log.
std::string why_not_a_manager(const ProcessIdentity& p, const std::vector<std::string>& binaries);

}  // namespace lockferry::capture
