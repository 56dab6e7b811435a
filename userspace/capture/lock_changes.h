// SPDX-License-Identifier: Apache-2.0
// The lock capture's events: a change the kernel made to a lock manager's locks, and a snapshot
// of every lock it holds for them (the truth a reconcile takes after lost events).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "lockferry/records.h"

namespace lockferry::capture {

// One lock the kernel holds for a lock manager process, as /proc/<pid>/fdinfo/<fd> shows it.
struct KernelLock {
  bool ofd = false;  // OFDLCK (owner: one open file) rather than POSIX (owner: the process)
  bool write = false;
  std::uint64_t dev = 0;  // kernel encoding (major << 20 | minor)
  std::uint64_t ino = 0;
  std::uint64_t start = 0;
  std::uint64_t end = LockRecord::kToEndOfFile;  // inclusive
  std::uint32_t manager_pid = 0;
  std::uint64_t file_id = 0;  // OFD: which open file of the manager (one per file, not per fd)
  std::string path;           // the fd's target, as /proc/<pid>/fd shows it
  auto operator<=>(const KernelLock&) const = default;
};

// Every lock the kernel held for some lock manager processes at one moment.
struct KernelSnapshot {
  std::map<std::uint32_t, std::string> managers;  // pid -> comm: the processes covered, entirely
  // Managers among them whose locks /proc shows without their owners (kernel lockd: a kernel
  // thread holding one owner per NLM client, listed in /proc/locks under its own pid): the
  // table matches their locks range by range instead of owner by owner.
  std::set<std::uint32_t> kernel_threads;
  // Those kernel threads also serve NFS servers of other network namespaces (lock events of
  // another netns were seen): /proc/locks mixes their locks with ours and tells neither the
  // namespace nor a distinct pid, so the reconcile only removes recorded ranges the kernel no
  // longer shows and adds none that only the kernel shows (they may be another node's).
  bool kernel_threads_shared = false;
  std::vector<KernelLock> locks;
  std::int64_t time_ns = 0;  // CLOCK_REALTIME when it was read
};

// One change the kernel made to the lock state (posix_lock_inode returned 0), or (reconciled)
// the kernel's whole state for some managers, which replaces what the table holds for them.
struct LockChange {
  enum class Kind { granted, released, reconciled };
  Kind kind = Kind::granted;
  bool write = false;     // granted: F_WRLCK (else F_RDLCK)
  bool ofd = false;       // FL_OFDLCK: an OFD lock call (the owner is the open file)
  bool on_close = false;  // FL_CLOSE: released because a file was closed (OFD or POSIX owner)
  std::uint64_t dev = 0;  // kernel encoding (major << 20 | minor)
  std::uint64_t ino = 0;
  std::uint64_t owner = 0;  // the kernel's fl_owner, keyed-hashed (OwnerHasher)
  std::uint64_t start = 0;
  std::uint64_t end = LockRecord::kToEndOfFile;  // inclusive
  // Who and where; kept with the granted range (a release carries no path).
  std::string manager_comm;
  std::uint32_t manager_pid = 0;
  std::int32_t owner_pid = 0;
  std::string path;
  std::string nlm_host;
  std::string client_addr;  // kernel lockd: LockRecord::client_addr, server_addr
  std::string server_addr;
  std::int64_t time_ns = 0;                        // CLOCK_REALTIME of the change
  std::shared_ptr<const KernelSnapshot> snapshot;  // reconciled only
};

}  // namespace lockferry::capture
