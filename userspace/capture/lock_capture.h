// SPDX-License-Identifier: Apache-2.0
// Lock capture: loads bpf/lock_watch.bpf.c (kprobes on kernel lockd's functions when lockd is the
// only manager and the kernel takes them, else tp_btf, else the classic filelock tracepoints),
// keeps its map of lock manager processes current from /proc, and delivers every successful grant
// and release as a LockChange on the daemon's io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "capture/lock_changes.h"
#include "capture/manager_identity.h"
#include "lockferry/result.h"

namespace lockferry::capture {

// Which kernel hooks carry the lock events.
enum class LockHook {
  automatic,   // the cheapest complete set that loads and attaches (lock_hook_plan.h)
  tp_btf,      // BTF-typed tracepoints (Linux 5.5+ with BTF)
  tracepoint,  // classic tracefs tracepoints filelock/posix_lock_inode, locks_remove_posix
  // kprobes on kernel lockd's own functions: only lockd's NLM calls run a program, other
  // processes' fcntl none. Only when kernel lockd is the one lock manager configured.
  kprobe,
  // uprobes on the C library's fcntl and close inside each userspace manager process (NFS-Ganesha),
  // attached per process: other processes run nothing. Kernel lockd, when configured, through the
  // kprobe set's programs; complete only where lockd is loaded (kprobes) or absent from the kernel.
  uprobe,
};
const char* to_string(LockHook hook);
Result<LockHook> lock_hook_from_string(std::string_view text);

struct LockOptions {
  std::vector<std::string> managers{"lockd", "ganesha.nfsd"};  // process names (comm, <= 15 bytes)
  // A process with a manager's name counts only when it is a kernel thread (kernel lockd) or runs
  // as root from one of these executables (see manager_identity.h); others are ignored and
  // counted as impostors.
  std::vector<std::string> manager_binaries = kDefaultManagerBinaries;
  LockHook hook = LockHook::automatic;
  std::string pin_dir;  // where to pin maps and programs ("" = do not pin)
  std::chrono::milliseconds rescan_interval{2000};  // /proc scan for manager processes
  std::uint32_t path_depth = 16;                    // path components read per grant (1..16)
  // Size of the ring buffer carrying lock events (power of two, >= the page size). A full buffer
  // drops events (counted); the table is then reconciled from /proc. Tests shrink it to force it.
  std::uint32_t ring_buffer_kb = 4096;
  // The table is also reconciled with the kernel's locks this often, drops or not (0: only after
  // drops). Each reconcile reads the fdinfo of every open file of every lock manager process.
  std::chrono::milliseconds reconcile_interval{10000};
  // NFS-Ganesha's NFS library, whose NLM handlers get the uprobes that name Ganesha's clients
  // ("" = the first of kGaneshaLibraryPaths that exists).
  std::string ganesha_library;
  // Key of the lock owner hash, per boot (see lock_owner.h); "" = a random key for this run only.
  std::string owner_key_path = "/run/lockferry/lock-owner-key";
};

struct LockCounters {
  std::uint64_t hits = 0;      // lock operations by manager processes
  std::uint64_t grants = 0;    // grant events emitted by the kernel side
  std::uint64_t releases = 0;  // release events emitted
  std::uint64_t refused = 0;   // not granted (conflict, deferred) or only tested: not emitted
  std::uint64_t drops = 0;     // events lost (ring buffer full): the lock table may be wrong
  std::uint64_t path_truncated = 0;
  std::uint64_t manager_adds = 0;  // managers the kernel side added on exec/rename
  std::uint64_t changes = 0;       // LockChanges delivered (grants and releases)
  std::uint64_t reconciles = 0;    // kernel snapshots delivered (after drops, and on the timer)
  std::uint64_t reconciles_after_drops = 0;
  std::uint64_t reconcile_locks = 0;  // kernel locks of the managers in the last snapshot
  std::uint64_t reconcile_us = 0;     // time the last snapshot took to read
  // Processes named like a lock manager that are not one (not root, not its binary, not a kernel
  // thread): found by userspace (each process once), and refused by the kernel side when they
  // took the name (each exec/rename).
  std::uint64_t impostors = 0;
  std::uint64_t impostors_refused_in_kernel = 0;
  std::uint64_t impostor_events = 0;  // lock events of such processes, ignored
  // Lock events of another network namespace (another NFS server on this kernel), not recorded.
  std::uint64_t other_netns_events = 0;
};

// Where lock events get their NLM client's name from (lockferry status: locks.client_names).
struct ClientNames {
  std::string source;  // "nlm_host", "uprobes", "nlm_host+uprobes" or "none"
  std::string reason;  // what each source is, or why it is missing
};

struct ManagerProcess {
  std::uint32_t pid = 0;
  std::string comm;
  bool operator==(const ManagerProcess&) const = default;
};

// Processes under `proc_root` (normally /proc) whose comm is one of `names`, sorted by pid.
// `exclude_pid` (our own) is never one. Only the name is checked: see why_not_a_manager.
std::vector<ManagerProcess> find_manager_processes(const std::string& proc_root,
                                                   const std::vector<std::string>& names,
                                                   std::uint32_t exclude_pid = 0);

// Checks manager names: non-empty, at most 15 bytes (the kernel's comm), at most 16 of them.
Result<void> check_manager_names(const std::vector<std::string>& names);

// The ring buffer's size in bytes for `kb` KiB, or why it cannot be that size.
Result<std::uint32_t> lock_ring_bytes(std::uint32_t kb);

class LockCapture {
 public:
  using ChangeHandler = std::function<void(const LockChange&)>;
  // A lock manager process exited or stopped being one: the kernel released its locks.
  using ManagerGoneHandler = std::function<void(const ManagerProcess&)>;

  virtual ~LockCapture() = default;

  // Loads, fills the manager maps from /proc, attaches, and starts delivering on `io`.
  static Result<std::unique_ptr<LockCapture>> start(boost::asio::io_context& io,
                                                    const LockOptions& options,
                                                    ChangeHandler on_change,
                                                    ManagerGoneHandler on_manager_gone);

  virtual LockHook hook() const = 0;
  // "kprobe: ...", "tp_btf: ...": the hooks, and why the cheaper sets were not taken
  virtual std::string hook_reason() const = 0;
  // Who names the NLM client of each lock: kernel lockd's nlm_host, uprobes on NFS-Ganesha's
  // NLM handlers, both, or none (with why).
  virtual ClientNames client_names() const = 0;
  virtual LockCounters counters() const = 0;
  virtual std::vector<ManagerProcess> managers() const = 0;
  // Replace the manager names and binaries (SIGHUP reload) and rescan. Refused when the hooks
  // cannot see the new managers' locks (the kprobe set sees kernel lockd's only).
  virtual Result<void> set_managers(const std::vector<std::string>& names,
                                    const std::vector<std::string>& binaries) = 0;
  // Delivers pending events, then rescans /proc now (the timer does it every rescan_interval).
  virtual void rescan() = 0;
  // Delivers whatever the kernel has queued now (tests; the io_context does it on its own).
  virtual void poll() = 0;
  // Delivers pending events, then the kernel's current locks of the managers (a LockChange of
  // kind reconciled, which the table takes as the truth). Runs on its own after drops and every
  // reconcile_interval.
  virtual void reconcile() = 0;
  // Detach, unpin, stop delivering.
  virtual void stop() = 0;
};

}  // namespace lockferry::capture
