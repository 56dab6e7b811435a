// SPDX-License-Identifier: Apache-2.0
// What the kernel itself says about the locks lock managers hold, from the fdinfo of their open
// files (procfs/), as a KernelSnapshot that a reconcile of the lock table takes as the truth
// after lost events.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "capture/lock_changes.h"

namespace lockferry::capture {

class KernelLockReader {
 public:
  // The POSIX and OFD locks the kernel holds for `managers` (pid -> comm), from the fdinfo of
  // each of their open files (a file shows the process's POSIX locks taken through it and its
  // own OFD locks). Kernel threads are left out of the snapshot's managers, as are processes
  // whose files cannot be read (logged, once per process for fdinfo); a process that is gone is
  // covered with no locks.
  KernelSnapshot read(const std::string& proc_root,
                      const std::map<std::uint32_t, std::string>& managers);

 private:
  // Manager processes already warned about unreadable fdinfo: the reconcile timer would repeat
  // it every few seconds. Per reader, so one capture's (or test's) warnings do not hide another's.
  std::mutex warned_mutex_;
  std::set<std::uint32_t> warned_;
};

}  // namespace lockferry::capture
