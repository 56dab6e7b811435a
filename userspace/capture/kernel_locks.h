// SPDX-License-Identifier: Apache-2.0
// What the kernel itself says about the locks lock managers hold, from the fdinfo of their open
// files (procfs/) or, for kernel lockd, from /proc/locks, as a KernelSnapshot that a reconcile of
// the lock table takes as the truth after lost events.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "capture/lock_changes.h"
#include "procfs/locks.h"

namespace lockferry::capture {

class KernelLockReader {
 public:
  // The POSIX and OFD locks the kernel holds for `managers` (pid -> comm), from the fdinfo of
  // each of their open files (a file shows the process's POSIX locks taken through it and its
  // own OFD locks). A kernel thread (kernel lockd) has no open files: its locks are the POSIX
  // lines of /proc/locks that name its pid (lockd sets fl_pid to its own tgid, so on 6.1 every
  // NLM client's lock shows lockd's pid), listed in the snapshot's kernel_threads. Processes
  // whose files cannot be read are left out of the snapshot (logged, once per process for
  // fdinfo); a process that is gone is covered with no locks.
  KernelSnapshot read(const std::string& proc_root,
                      const std::map<std::uint32_t, std::string>& managers);

 private:
  // Manager processes already warned about unreadable fdinfo: the reconcile timer would repeat
  // it every few seconds. Per reader, so one capture's (or test's) warnings do not hide another's.
  std::mutex warned_mutex_;
  std::set<std::uint32_t> warned_;
};

// The held POSIX locks of `pid` among /proc/locks lines (a kernel thread's locks: no path, one
// group, since /proc/locks does not tell owners apart).
std::vector<KernelLock> kernel_thread_locks(const std::vector<procfs::ProcLock>& lines,
                                            std::uint32_t pid);

}  // namespace lockferry::capture
