// SPDX-License-Identifier: Apache-2.0
// fdinfo lock lines of lock managers -> KernelSnapshot; see kernel_locks.h. Phases per manager:
// read its descriptors' lock lines, keep each POSIX lock once, keep each open file's OFD locks
// once, add them to the snapshot.
#include "capture/kernel_locks.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <optional>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "procfs/open_files.h"
#include "procfs/process.h"

namespace lockferry::capture {
namespace {

// The held POSIX and OFD locks of one fdinfo, as KernelLocks of `pid` (blocked requests, leases,
// flocks and the like are not lock manager locks).
std::vector<KernelLock> held_locks(const procfs::FdLocks& file, std::uint32_t pid) {
  std::vector<KernelLock> out;
  for (const auto& l : file.locks) {
    if (l.waiting || (l.kind != "POSIX" && l.kind != "OFDLCK")) continue;
    if (l.type != "READ" && l.type != "WRITE") continue;
    KernelLock k;
    k.ofd = l.kind == "OFDLCK";
    k.write = l.type == "WRITE";
    k.dev = l.dev;
    k.ino = l.ino;
    k.start = l.start;
    k.end = l.end;
    k.manager_pid = pid;
    k.path = file.path;
    out.push_back(std::move(k));
  }
  return out;
}

// One process's POSIX locks show under each of its fds of the file: each once.
std::vector<KernelLock> posix_once(const std::vector<procfs::FdLocks>& files, std::uint32_t pid) {
  std::map<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, bool>, KernelLock>
      posix;
  for (const auto& file : files)
    for (auto& k : held_locks(file, pid))
      if (!k.ofd) posix.emplace(std::tuple(k.dev, k.ino, k.start, k.end, k.write), std::move(k));
  std::vector<KernelLock> out;
  for (auto& [where, k] : posix) out.push_back(std::move(k));
  return out;
}

// OFD locks per open file: fds of one file (dup, fork) show the same locks, kept once, with the
// first fd as the file's id.
std::vector<KernelLock> ofd_once(const std::vector<procfs::FdLocks>& files, std::uint32_t pid) {
  struct OfdFile {
    int fd;
    std::vector<KernelLock> locks;
  };
  std::vector<OfdFile> seen;
  for (const auto& file : files) {
    std::vector<KernelLock> ofd = held_locks(file, pid);
    std::erase_if(ofd, [](const KernelLock& k) { return !k.ofd; });
    if (ofd.empty()) continue;
    // Is this fd a file already seen (kcmp: same struct file)? Without kcmp, equal lock lists
    // on one inode are taken for one file.
    const bool again = std::any_of(seen.begin(), seen.end(), [&](const OfdFile& f) {
      if (f.locks.front().dev != ofd.front().dev || f.locks.front().ino != ofd.front().ino)
        return false;
      const auto same = procfs::same_open_file(pid, f.fd, file.fd);
      return same ? *same : f.locks == ofd;
    });
    if (!again) seen.push_back({file.fd, std::move(ofd)});
  }
  std::vector<KernelLock> out;
  for (auto& f : seen)
    for (auto& k : f.locks) {
      k.file_id = static_cast<std::uint64_t>(f.fd);
      out.push_back(std::move(k));
    }
  return out;
}

}  // namespace

std::vector<KernelLock> kernel_thread_locks(const std::vector<procfs::ProcLock>& lines,
                                            std::uint32_t pid) {
  std::vector<KernelLock> out;
  procfs::FdLocks all;
  for (const auto& l : lines)
    if (l.kind == "POSIX" && l.pid == static_cast<std::int64_t>(pid)) all.locks.push_back(l);
  for (auto& k : held_locks(all, pid)) out.push_back(std::move(k));
  return out;
}

KernelSnapshot KernelLockReader::read(const std::string& proc_root,
                                      const std::map<std::uint32_t, std::string>& managers) {
  KernelSnapshot snap;
  snap.time_ns = clock::now_ns();
  std::optional<std::vector<procfs::ProcLock>> proc_locks;  // read once, for kernel threads only
  for (const auto& [pid, comm] : managers) {
    if (procfs::is_kernel_thread(proc_root, pid)) {
      if (!proc_locks) {
        auto text = procfs::read_proc_file(proc_root + "/locks");
        if (!text) {
          log::warn_limited("locks: cannot read /proc/locks",
                            "locks: cannot read {}/locks: {}; kernel lockd's locks are not "
                            "reconciled",
                            proc_root, text.error().message);
          continue;
        }
        proc_locks = procfs::parse_proc_locks(*text);
      }
      snap.managers[pid] = comm;
      snap.kernel_threads.insert(pid);
      for (auto& k : kernel_thread_locks(*proc_locks, pid)) snap.locks.push_back(std::move(k));
      continue;
    }
    auto fds = procfs::list_fds(proc_root, pid);
    if (!fds) {
      const int err = fds.error().code;
      if (err == ENOENT || err == ESRCH) {
        snap.managers[pid] = comm;  // gone: the kernel released its locks
      } else {
        spdlog::warn(
            "locks: cannot list the files of lock manager {} (pid {}): {}; its locks are "
            "not reconciled",
            comm, pid, strerror_text(err));
      }
      continue;
    }
    // A manager whose fdinfo we may not read is left out of the snapshot, so its recorded
    // locks stay as they are: "cannot look" must never read as "holds no locks".
    std::vector<procfs::FdLocks> files;
    int denied = 0;
    for (const int fd : *fds) {
      auto file = procfs::read_fd_locks(proc_root, pid, fd);
      if (!file) {
        denied = file.error().code;
        break;
      }
      if (!file->locks.empty()) files.push_back(std::move(*file));
    }
    if (denied != 0) {
      std::lock_guard lock(warned_mutex_);
      if (warned_.insert(pid).second)
        spdlog::warn(
            "locks: cannot read the open files of lock manager {} (pid {}): {}; its locks are "
            "not reconciled (lockferryd needs CAP_SYS_PTRACE to read another process's fdinfo)",
            comm, pid, strerror_text(denied));
      continue;
    }
    snap.managers[pid] = comm;
    for (auto& k : posix_once(files, pid)) snap.locks.push_back(std::move(k));
    for (auto& k : ofd_once(files, pid)) snap.locks.push_back(std::move(k));
  }
  return snap;
}

}  // namespace lockferry::capture
