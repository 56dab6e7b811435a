// SPDX-License-Identifier: Apache-2.0
// What /proc/<pid>/ says about a process: its name (comm), stat flags, uids and executable. Every
// reader takes the /proc root, so tests can point it at a fake tree.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "lockferry/result.h"

namespace lockferry::procfs {

// "<proc_root>/<pid>/<file>".
std::string pid_path(const std::string& proc_root, std::uint32_t pid, std::string_view file);

// The whole of a small /proc file (they have no size to stat), or the errno of the failure: a
// caller can tell "gone" (ENOENT, ESRCH) from "not allowed to look" (EACCES, EPERM).
Result<std::string> read_proc_file(const std::string& path);

// /proc/<pid>/comm without its newline: the name the process gave itself (<= 15 bytes); "" when
// the process is gone or the file cannot be read.
std::string read_comm(const std::string& proc_root, std::uint32_t pid);

// The fields of /proc/<pid>/stat lockferry needs.
struct ProcStat {
  std::uint32_t ppid = 0;
  std::uint64_t flags = 0;  // task->flags: PF_KTHREAD is 0x00200000
  bool kernel_thread() const;
};
// nullopt when the process is gone or the file cannot be parsed.
std::optional<ProcStat> read_proc_stat(const std::string& proc_root, std::uint32_t pid);

// Whether /proc/<pid>/stat says the process is a kernel thread (kernel lockd): it has no files,
// so fdinfo cannot show its locks.
bool is_kernel_thread(const std::string& proc_root, std::uint32_t pid);

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

}  // namespace lockferry::procfs
