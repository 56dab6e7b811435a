// SPDX-License-Identifier: Apache-2.0
// Lock capture; see lock_capture.h. The BPF loader (bpf_loader.h) loads lock_watch with the
// first hook variant that loads and attaches (lock_hook_plan.h: kprobe where kernel lockd is the
// only manager, tp_btf, else the classic tracepoints); this file
// fills the manager maps from /proc, turns ring-buffer events into LockChanges, and rescans /proc
// and reconciles with the kernel's locks on timers.
#include "capture/lock_capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <utility>

#include "capture/bpf_loader.h"
#include "capture/bpf_maps.h"
#include "capture/bpf_probes.h"
#include "capture/ganesha_nlm.h"
#include "capture/kernel_locks.h"
#include "capture/lock_hook_plan.h"
#include "capture/lock_netns.h"
#include "capture/lockd_functions.h"
#include "capture/manager_uprobes.h"
#include "capture/shared_lockd.h"
#include "common/address_text.h"
#include "common/clock.h"
#include "common/log.h"
#include "lock_watch.skel.h"
#include "lockferry/events.h"
#include "owner_hash/owner_hasher.h"
#include "procfs/netns.h"
#include "procfs/process.h"

namespace lockferry::capture {

std::vector<ManagerProcess> find_manager_processes(const std::string& proc_root,
                                                   const std::vector<std::string>& names,
                                                   std::uint32_t exclude_pid) {
  std::vector<ManagerProcess> out;
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(proc_root.c_str()), ::closedir);
  if (!dir) return out;
  while (dirent* entry = ::readdir(dir.get())) {
    char* end = nullptr;
    const unsigned long pid = std::strtoul(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid == 0 || pid > UINT32_MAX || pid == exclude_pid)
      continue;
    std::string comm = procfs::read_comm(proc_root, static_cast<std::uint32_t>(pid));
    if (comm.empty() || std::find(names.begin(), names.end(), comm) == names.end()) continue;
    out.push_back({static_cast<std::uint32_t>(pid), std::move(comm)});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.pid < b.pid; });
  return out;
}

namespace {

// A reconcile after drops waits this long, so a burst that overflows the ring buffer costs one.
constexpr std::chrono::milliseconds kReconcileAfterDrops{20};
// A manager that just exec()ed maps its C library within milliseconds: its uprobes are tried
// again this often, for this long, then on every rescan.
constexpr std::chrono::milliseconds kUprobeRetry{20};
constexpr std::chrono::seconds kUprobeRetryFor{5};
// The lock programs wake lockferryd only when a quarter of the ring is used (targ_wake_bytes);
// otherwise it reads the ring this often. The recorder batches for 75 ms anyway.
constexpr std::chrono::milliseconds kLockRingDrain{25};
// Sets `pid`'s bit in the kernel side's manager pre-filter (lock_watch's .bss, see
// LF_MANAGER_BITMAP_WORDS). Must come before the lock_managers entry, or a lock taken in between
// would pass the hash but not the filter. Atomic: the exec/rename programs set bits too.
void mark_manager(lock_watch* skel, std::uint32_t pid) {
  __atomic_fetch_or(&skel->bss->manager_bits[(pid / 64) % LF_MANAGER_BITMAP_WORDS],
                    std::uint64_t{1} << (pid % 64), __ATOMIC_SEQ_CST);
}

// The packed, leaf-first path names of an event as "/a/b/c" (or ".../b/c" when partial).
std::string event_path(const lf_lock_event& e) {
  const std::size_t len = std::min<std::size_t>(e.path_len, sizeof(e.path));
  std::vector<std::string_view> names;
  for (std::size_t off = 0; off < len && names.size() < e.path_depth;) {
    const std::size_t n = ::strnlen(e.path + off, len - off);
    names.emplace_back(e.path + off, n);
    off += n + 1;
  }
  const bool complete = (e.path_flags & LF_PATH_COMPLETE) != 0 &&
                        (e.path_flags & (LF_PATH_TRUNCATED | LF_PATH_DISCONNECTED)) == 0;
  if (names.empty()) return complete ? "/" : "";
  std::string out = complete ? "" : "...";
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    out += '/';
    out += *it;
  }
  return out;
}

// tp_btf needs no tracefs; the classic hooks and the exec/rename helpers do: without it, ""
// (their probes then say so).
std::string find_tracefs() {
  auto tracefs = ensure_tracefs("filelock");
  if (tracefs) return *tracefs;
  spdlog::warn("locks: {}; only tp_btf hooks can be used", tracefs.error().message);
  return {};
}

class BpfLockCapture final : public LockCapture {
 public:
  BpfLockCapture(boost::asio::io_context& io, ChangeHandler on_change, ManagerGoneHandler on_gone)
      : loader_(io, LOCKFERRY_SKELETON(lock_watch), "locks"),
        rescan_timer_(io),
        reconcile_timer_(io),
        drop_timer_(io),
        uprobe_timer_(io),
        on_change_(std::move(on_change)),
        on_gone_(std::move(on_gone)) {}
  ~BpfLockCapture() override { stop(); }

  Result<void> init(const LockOptions& options);

  LockHook hook() const override { return hook_; }
  std::string hook_reason() const override { return reason_; }
  ClientNames client_names() const override { return client_names_; }
  LockCounters counters() const override;
  std::vector<ManagerProcess> managers() const override;
  Result<void> set_managers(const std::vector<std::string>& names,
                            const std::vector<std::string>& binaries) override;
  void rescan() override;
  void poll() override;
  void reconcile() override;
  void stop() override;

 private:
  Result<void> take_options(const LockOptions& options);
  void use_own_netns();
  void use_owner_key(const std::string& path);
  Result<void> load_hooks(const LockOptions& options, const std::string& tracefs);
  Result<void> fill_managers();
  void attach_client_names(const std::string& library);
  Result<void> keep_or_drop_lockd_kprobes(lock_watch& skel);
  void sync_uprobes();
  void reconcile_soon();
  void manager_added(std::uint32_t pid);
  void track_if_manager(std::uint32_t pid);
  Result<void> start_delivery();
  void describe(const std::string& pin_note);
  lock_watch* skel() const { return loader_.get(); }
  Result<void> fill_names();
  std::vector<std::uint32_t> map_pids() const;
  bool named_as_manager(const std::string& comm) const;
  bool is_real_manager(std::uint32_t pid, const std::string& comm);
  void track_kernel_added();
  void on_ring_event(const void* data, std::size_t size);
  void handle(const lf_lock_event& e);
  void after_batch();
  void arm_rescan();
  void arm_reconcile();
  void mark_shared_kernel_threads(KernelSnapshot& snapshot);
  void consume();
  void check_drops();
  std::array<std::uint64_t, LF_LCNT_MAX> read_counters() const;

  BpfLoader<lock_watch> loader_;
  boost::asio::steady_timer rescan_timer_;
  boost::asio::steady_timer reconcile_timer_;
  boost::asio::steady_timer drop_timer_;
  boost::asio::steady_timer uprobe_timer_;
  ChangeHandler on_change_;
  ManagerGoneHandler on_gone_;
  std::vector<std::string> names_;
  std::vector<std::string> binaries_;
  // pid -> comm of the verified managers (why_not_a_manager), as of the last rescan or event.
  std::map<std::uint32_t, std::string> managers_;
  // Impostors seen and still named so: each is counted and logged once.
  std::map<std::uint32_t, std::string> impostors_;
  // Verdicts on processes whose events arrive before a rescan saw them, for one poll.
  std::map<std::uint32_t, bool> event_verdicts_;
  std::uint64_t impostors_seen_ = 0;
  std::uint64_t impostor_events_ = 0;
  LockNetnsFilter netns_;
  std::uint64_t other_netns_events_ = 0;
  bool shared_logged_ = false;  // mark_shared_kernel_threads said so once
  std::chrono::milliseconds rescan_interval_{2000};
  std::chrono::milliseconds reconcile_interval_{0};
  owner_hash::OwnerHasher hasher_ = owner_hash::OwnerHasher::random();
  KernelLockReader kernel_locks_;
  LockHook hook_ = LockHook::automatic;
  std::string reason_;
  std::string skipped_;  // why cheaper hook sets were not tried (lock_hook_plan.h)
  ClientNames client_names_;
  GaneshaUprobes ganesha_;
  // Hook set uprobe: the managers' uprobes, and since when each one without them has been tried.
  ManagerUprobes uprobes_;
  std::map<std::uint32_t, std::chrono::steady_clock::time_point> uprobe_waits_;
  bool uprobe_retry_armed_ = false;
  bool delivering_ = false;  // start_delivery() ran: events, timers
  std::string lockd_note_;   // uprobe set: how kernel lockd's locks are seen, for the reason
  std::optional<double> uprobe_ns_;  // what a uprobe on fcntl costs here, when auto measured it
  std::uint64_t changes_ = 0;
  std::uint64_t seen_drops_ = 0;
  std::uint64_t reconciles_ = 0;
  std::uint64_t reconciles_after_drops_ = 0;
  std::uint64_t reconcile_locks_ = 0;
  std::uint64_t reconcile_us_ = 0;
  bool drop_reconcile_pending_ = false;
  bool stopped_ = false;
  lf_lock_event event_{};
};

// Phase 1 of init: the options, checked before anything touches the kernel.
Result<void> BpfLockCapture::take_options(const LockOptions& options) {
  if (auto r = check_manager_names(options.managers); !r) return r;
  names_ = options.managers;
  binaries_ = options.manager_binaries;
  rescan_interval_ = std::max(options.rescan_interval, std::chrono::milliseconds(100));
  reconcile_interval_ = options.reconcile_interval.count() <= 0
                            ? std::chrono::milliseconds(0)
                            : std::max(options.reconcile_interval, std::chrono::milliseconds(100));
  if (auto r = lock_ring_bytes(options.ring_buffer_kb); !r) return r.error();
  return {};
}

// Phase 2: several NFS servers may share this kernel, one per network namespace (kernel lockd
// serves them all from one thread): this node's locks are those of lockferryd's namespace.
void BpfLockCapture::use_own_netns() {
  auto own = procfs::read_netns("/proc");
  if (!own) {
    spdlog::warn("locks: {}; recording the locks of every network namespace", own.error().message);
    return;
  }
  netns_ = LockNetnsFilter(*own);
}

// Phase 2: owners are kernel addresses: only their keyed hash leaves this class. Without the
// per-boot key, a key of this run only (logged, not fatal).
void BpfLockCapture::use_owner_key(const std::string& path) {
  if (path.empty()) return;
  if (auto h = owner_hash::OwnerHasher::for_boot(path))
    hasher_ = *h;
  else
    spdlog::warn(
        "locks: {}; hashing lock owners with a key of this run only (a restart will "
        "not match the stored owners until the next reconcile)",
        h.error().message);
}

// Phase 3: the first hook variant that loads and attaches, cheapest first (lock_hook_plan.h; the
// program table says which programs each variant has), with the manager maps filled before
// attach.
Result<void> BpfLockCapture::load_hooks(const LockOptions& options, const std::string& tracefs) {
  // Priced only when auto would weigh it: ~20 ms of fcntl calls with and without the probes.
  const Result<double> uprobe_ns =
      options.hook == LockHook::automatic && !kprobe_hooks_cover(names_)
          ? measure_fcntl_uprobe_ns()
          : Result<double>(make_error("not measured"));
  if (uprobe_ns) uprobe_ns_ = *uprobe_ns;
  auto plan = plan_lock_hooks(options.hook, names_, uprobe_ns);
  if (!plan) return plan.error();
  skipped_ = plan->skipped;
  std::vector<std::string_view> variants;
  for (LockHook h : plan->order) variants.emplace_back(to_string(h));
  LoadSteps<lock_watch> steps;
  steps.configure = [&](lock_watch& skel) -> Result<void> {
    if (bpf_program__autoload(skel.progs.uprobe__enter_manager_fcntl))
      if (auto r = keep_or_drop_lockd_kprobes(skel); !r) return r;
    // The kprobe programs read lockd's arguments by position: only where lockd's BTF agrees.
    if (bpf_program__autoload(skel.progs.kprobe__enter_nlmsvc_lock))
      if (auto r = check_lockd_functions(); !r) return r;
    if (bpf_program__autoload(skel.progs.kprobe__enter_nlm_unlock_files))
      if (auto r = check_lockd_functions(/*optional=*/true); !r) {
        spdlog::info("locks: {}, its program enter_nlm_unlock_files stays unloaded",
                     r.error().message);
        bpf_program__set_autoload(skel.progs.kprobe__enter_nlm_unlock_files, false);
      }
    skel.rodata->targ_path_depth =
        std::clamp<std::uint32_t>(options.path_depth, 1, LF_LOCK_PATH_DEPTH);
    skel.rodata->targ_nlm_host = true;
    auto bytes = size_ring_buffer(skel.maps.lock_events, options.ring_buffer_kb, "lock");
    if (!bytes) return bytes.error();
    skel.rodata->targ_wake_bytes = *bytes / 4;
    return {};
  };
  steps.fill = [this](lock_watch&) -> Result<void> {
    if (auto r = fill_names(); !r) return r;
    return fill_managers();
  };
  if (auto r = loader_.load(variants, tracefs, steps); !r)
    return make_error("no lock hook could be attached ({})", loader_.tried());
  auto hook = lock_hook_from_string(loader_.variant());
  if (!hook) return hook.error();
  hook_ = *hook;
  if (hook_ == LockHook::uprobe) {
    const auto& progs = skel()->progs;
    uprobes_ =
        ManagerUprobes({progs.uprobe__enter_manager_fcntl, progs.uretprobe__exit_manager_fcntl,
                        progs.uprobe__enter_manager_close});
    sync_uprobes();
  }
  return {};
}

// The uprobe set: every verified userspace manager has its uprobes, and no other process. A
// manager attached after it started may have taken locks before: a reconcile follows.
void BpfLockCapture::sync_uprobes() {
  if (hook_ != LockHook::uprobe || stopped_) return;
  for (std::uint32_t pid : uprobes_.pids())
    if (!managers_.contains(pid)) {
      uprobes_.detach(pid);
      uprobe_waits_.erase(pid);
    }
  const auto now = std::chrono::steady_clock::now();
  bool added = false, retry = false;
  for (const auto& [pid, comm] : managers_) {
    if (uprobes_.attached(pid) || procfs::is_kernel_thread("/proc", pid)) continue;
    auto r = uprobes_.attach(pid);
    if (r) {
      spdlog::info("locks: uprobes on fcntl and close of {} in {} (pid {})", uprobes_.library(pid),
                   comm, pid);
      uprobe_waits_.erase(pid);
      added = added || delivering_;
      continue;
    }
    const auto since = uprobe_waits_.try_emplace(pid, now).first->second;
    if (now - since < kUprobeRetryFor) {
      retry = true;
    } else {
      log::warn_limited("locks: a lock manager without uprobes",
                        "locks: {} (pid {}) has no uprobes: {}; its locks are recorded by the "
                        "reconcile only, without client names; tried again every rescan",
                        comm, pid, r.error().message);
    }
  }
  if (added) reconcile_soon();
  if (!retry || std::exchange(uprobe_retry_armed_, true)) return;
  uprobe_timer_.expires_after(kUprobeRetry);
  uprobe_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled by stop(): `this` may be gone
    uprobe_retry_armed_ = false;
    sync_uprobes();
  });
}

// Part of phase 3 for the uprobe set, which sees kernel lockd's locks only through the kprobe
// set's programs: kept where lockd is configured and loaded (the set is refused if they cannot
// load), dropped where lockd is not configured or cannot run in this kernel, and the set refused
// where lockd could still be loaded later (the kprobes could not follow it).
Result<void> BpfLockCapture::keep_or_drop_lockd_kprobes(lock_watch& skel) {
  bpf_program* const lockd_progs[] = {
      skel.progs.kprobe__enter_nlmsvc_lock,    skel.progs.kretprobe__exit_nlmsvc_lock,
      skel.progs.kprobe__enter_nlmsvc_unlock,  skel.progs.kretprobe__exit_nlmsvc_unlock,
      skel.progs.kprobe__enter_nlm_async_call, skel.progs.kprobe__enter_nlm_unlock_files};
  auto drop = [&](std::string note) {
    for (bpf_program* p : lockd_progs) bpf_program__set_autoload(p, false);
    lockd_note_ = std::move(note);
    return Result<void>{};
  };
  if (std::find(names_.begin(), names_.end(), kKernelLockdName) == names_.end()) return drop("");
  const LockdPresence lockd = lockd_presence();
  switch (lockd.state) {
    case LockdPresence::State::absent:
      return drop(
          fmt::format("kernel lockd needs no hook: it is not in this kernel ({})", lockd.why));
    case LockdPresence::State::loadable:
      return make_error(
          "kernel lockd is configured and may be loaded later ({}), and its kprobes can only "
          "attach to a loaded lockd",
          lockd.why);
    case LockdPresence::State::loaded:
      break;
  }
  for (bpf_program* p : lockd_progs)
    if (p != skel.progs.kprobe__enter_nlm_unlock_files && !bpf_program__autoload(p))
      return make_error("kernel lockd is loaded, but its kprobe {} cannot load here",
                        bpf_program__name(p));
  lockd_note_ = "kernel lockd's locks through its kprobes (as hook set kprobe)";
  return {};
}

// Part of phase 3: the managers /proc shows now, into the kernel's maps before attach.
Result<void> BpfLockCapture::fill_managers() {
  managers_.clear();
  for (const auto& m :
       find_manager_processes("/proc", names_, static_cast<std::uint32_t>(::getpid()))) {
    if (!is_real_manager(m.pid, m.comm)) continue;
    lf_manager_value v{LF_ADDED_BY_SCAN, 0};
    mark_manager(skel(), m.pid);
    if (bpf_map_update_elem(bpf_map__fd(skel()->maps.lock_managers), &m.pid, &v, BPF_ANY) != 0)
      return make_errno_error(errno, "cannot add pid {} to the lock_managers map", m.pid);
    managers_[m.pid] = m.comm;
  }
  return {};
}

// Phase 5: events from the ring buffer, /proc rescans and reconciles on the io_context.
Result<void> BpfLockCapture::start_delivery() {
  auto ring = loader_.ring().start(
      skel()->maps.lock_events, "lock",
      [this](const void* data, std::size_t size) { on_ring_event(data, size); },
      [this] { after_batch(); }, kLockRingDrain);
  if (!ring) return ring;
  arm_rescan();
  if (reconcile_interval_.count() > 0) arm_reconcile();
  delivering_ = true;
  return {};
}

// The hooks of the chosen set, for the reason string.
std::string hooks_text(LockHook hook, const lock_watch& skel) {
  if (hook == LockHook::uprobe)
    return "uprobes on the C library's fcntl and close inside each userspace lock manager "
           "process, posix_lock_inode not hooked: other processes' locks run no program";
  if (hook != LockHook::kprobe)
    return fmt::format("posix_lock_inode + locks_remove_posix as {}",
                       hook == LockHook::tp_btf ? "BTF-typed tracepoints" : "classic tracepoints");
  const bool unlock_files = bpf_program__fd(skel.progs.kprobe__enter_nlm_unlock_files) >= 0;
  return fmt::format(
      "kernel lockd's nlmsvc_lock + nlmsvc_unlock (kprobe and kretprobe), nlm_async_call (blocked "
      "locks granted){} as kprobes, posix_lock_inode not hooked: other processes' locks run no "
      "program{}",
      unlock_files ? ", nlm_unlock_files (client reboot, FREE_ALL)" : "",
      unlock_files ? ""
                   : "; nlm_unlock_files cannot be hooked: the reconcile repairs what it drops");
}

// Phase 6: the reason string status shows, and the log.
void BpfLockCapture::describe(const std::string& pin_note) {
  const bool helpers = bpf_program__fd(skel()->progs.tracepoint__sched__sched_process_exec) >= 0;
  std::string tried = loader_.tried();
  if (!skipped_.empty()) tried = skipped_ + (tried.empty() ? "" : "; " + tried);
  reason_ = fmt::format(
      "{}: {}{}; managers {} from /proc every {} ms{}{}; "
      "ring buffer {} KiB; reconcile with the kernel's locks after drops{}",
      to_string(hook_),
      hooks_text(hook_, *skel()) + (lockd_note_.empty() ? "" : "; " + lockd_note_) +
          (hook_ == LockHook::uprobe && uprobe_ns_
               ? fmt::format("; they add {:.1f} us to each of the managers' lock calls here",
                             *uprobe_ns_ / 1000)
               : ""),
      tried.empty() ? "" : " (" + tried + ")", fmt::join(names_, ", "), rescan_interval_.count(),
      helpers ? " and on exec/rename" : "", pin_note,
      bpf_map__max_entries(skel()->maps.lock_events) / 1024,
      reconcile_interval_.count() > 0 ? fmt::format(" and every {} ms", reconcile_interval_.count())
                                      : std::string());
  for (const auto& [pid, comm] : managers_)
    spdlog::info("locks: tracking lock manager {} (pid {})", comm, pid);
  spdlog::info("locks: {}", reason_);
}

// Part of phase 3: the sources of client names. Kernel lockd's come with its BTF; Ganesha's need
// the uprobes, which degrade to no names (never to no capture) when they cannot attach.
void BpfLockCapture::attach_client_names(const std::string& library) {
  std::vector<std::string> sources, reasons;
  if (::access("/sys/kernel/btf/lockd", R_OK) == 0) {
    sources.emplace_back("nlm_host");
    reasons.emplace_back("kernel lockd: nlm_host of the lock owner");
  }
  auto lib =
      library.empty() ? find_ganesha_library(kGaneshaLibraryPaths) : Result<std::string>(library);
  const auto& progs = skel()->progs;
  Result<GaneshaUprobes> uprobes = make_error("uprobes are not available on this kernel");
  if (hook_ == LockHook::kprobe)
    uprobes = make_error("not a configured lock manager (kprobe hooks: kernel lockd only)");
  else if (!lib)
    uprobes = lib.error();
  else if (bpf_program__fd(progs.uprobe__ganesha_nlm_lock) >= 0 &&
           bpf_program__fd(progs.uretprobe__ganesha_nlm_return) >= 0)
    uprobes = GaneshaUprobes::attach(*lib, progs.uprobe__ganesha_nlm_lock,
                                     progs.uprobe__ganesha_nlm_unlock,
                                     progs.uretprobe__ganesha_nlm_return);
  if (uprobes) {
    ganesha_ = std::move(*uprobes);
    sources.emplace_back("uprobes");
    reasons.push_back(fmt::format("NFS-Ganesha: uprobes on {} NLM handlers of {}",
                                  ganesha_.handlers(), ganesha_.library()));
  } else {
    reasons.push_back("NFS-Ganesha: no client names: " + uprobes.error().message);
  }
  client_names_.source = sources.empty() ? "none" : fmt::format("{}", fmt::join(sources, "+"));
  client_names_.reason = fmt::format("{}", fmt::join(reasons, "; "));
  spdlog::info("locks: client names from {} ({})", client_names_.source, client_names_.reason);
}

// Each phase fails with its own error; pinning never fails the capture (bpftool only).
Result<void> BpfLockCapture::init(const LockOptions& options) {
  if (auto r = take_options(options); !r) return r;
  use_own_netns();
  use_owner_key(options.owner_key_path);
  if (auto r = load_hooks(options, find_tracefs()); !r) return r;
  attach_client_names(options.ganesha_library);
  const std::string pin_note = loader_.pin(options.pin_dir);  // phase 4
  if (auto r = start_delivery(); !r) return r;
  describe(pin_note);
  return {};
}

Result<void> BpfLockCapture::fill_names() {
  const int fd = bpf_map__fd(skel()->maps.manager_names);
  std::array<char, LF_COMM_LEN> key{};
  std::vector<std::array<char, LF_COMM_LEN>> old;
  while (bpf_map_get_next_key(fd, old.empty() ? nullptr : old.back().data(), key.data()) == 0)
    old.push_back(key);
  for (auto& k : old) bpf_map_delete_elem(fd, k.data());
  for (const auto& name : names_) {
    std::array<char, LF_COMM_LEN> k{};
    std::memcpy(k.data(), name.data(), std::min(name.size(), k.size() - 1));
    std::uint32_t v = LF_MANAGER_NAME_PRESENT;
    if (bpf_map_update_elem(fd, k.data(), &v, BPF_ANY) != 0)
      return make_errno_error(errno, "cannot add '{}' to the manager_names map", name);
  }
  return {};
}

std::vector<std::uint32_t> BpfLockCapture::map_pids() const {
  std::vector<std::uint32_t> pids;
  const int fd = bpf_map__fd(skel()->maps.lock_managers);
  std::uint32_t key = 0;
  while (bpf_map_get_next_key(fd, pids.empty() ? nullptr : &pids.back(), &key) == 0)
    pids.push_back(key);
  return pids;
}

bool BpfLockCapture::named_as_manager(const std::string& comm) const {
  return !comm.empty() && std::find(names_.begin(), names_.end(), comm) != names_.end();
}

// A process named like a manager is one only if why_not_a_manager says so. An impostor is taken
// out of the kernel's map (no more events from it), counted once and logged (rate-limited: a
// user can start many).
bool BpfLockCapture::is_real_manager(std::uint32_t pid, const std::string& comm) {
  const auto who = procfs::read_process_identity("/proc", pid);
  const std::string why = why_not_a_manager(who, binaries_);
  if (why.empty()) {
    impostors_.erase(pid);
    return true;
  }
  if (skel()) bpf_map_delete_elem(bpf_map__fd(skel()->maps.lock_managers), &pid);
  if (who.exists && impostors_.try_emplace(pid, comm).second) {
    ++impostors_seen_;
    log::warn_limited("locks: a process named like a lock manager",
                      "locks: ignoring {} (pid {}, uid {}): named like a lock manager, but {}; "
                      "its locks are not recorded",
                      comm, pid, who.uid ? std::to_string(*who.uid) : std::string("?"), why);
  }
  return false;
}

// Processes the kernel side added on exec/rename that no rescan or event has verified yet.
void BpfLockCapture::track_kernel_added() {
  for (std::uint32_t pid : map_pids()) track_if_manager(pid);
  sync_uprobes();
}

// `pid`, which the kernel side added, into managers_ once verified.
void BpfLockCapture::track_if_manager(std::uint32_t pid) {
  if (managers_.contains(pid)) return;
  const std::string comm = procfs::read_comm("/proc", pid);
  if (!named_as_manager(comm) || !is_real_manager(pid, comm)) return;
  managers_[pid] = comm;
  spdlog::info("locks: tracking lock manager {} (pid {})", comm, pid);
}

void BpfLockCapture::arm_rescan() {
  rescan_timer_.expires_after(rescan_interval_);
  rescan_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled by stop(): `this` may be gone
    rescan();
    if (!stopped_) arm_rescan();
  });
}

void BpfLockCapture::arm_reconcile() {
  reconcile_timer_.expires_after(reconcile_interval_);
  reconcile_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled by stop(): `this` may be gone
    reconcile();
    if (!stopped_) arm_reconcile();
  });
}

void BpfLockCapture::consume() {
  if (stopped_) return;
  loader_.ring().consume();
}

void BpfLockCapture::poll() {
  consume();
  after_batch();
}

void BpfLockCapture::after_batch() {
  event_verdicts_.clear();  // a verdict holds for one batch of events, not for a later pid
  check_drops();
}

void BpfLockCapture::reconcile() {
  if (stopped_ || !skel()) return;
  // Order matters: events queued before the snapshot is read go first; the drops counted by now
  // are repaired by this snapshot, later ones schedule another. Events the kernel emits while
  // /proc is read are applied after the snapshot: each sets its owner's range to what it was
  // made, so applying one the snapshot already shows changes nothing.
  consume();
  const auto drops = read_counters()[LF_LCNT_DROPS];
  if (drops > seen_drops_) {
    log::warn_limited("locks: the BPF ring buffer dropped lock events",
                      "locks: the BPF ring buffer dropped {} lock event(s); reconciling the lock "
                      "table with the kernel's locks",
                      drops - seen_drops_);
    ++reconciles_after_drops_;
    seen_drops_ = drops;
  }
  drop_reconcile_pending_ = false;
  drop_timer_.cancel();
  // A manager the kernel side added whose events were all dropped has locks too.
  track_kernel_added();
  event_verdicts_.clear();
  std::map<std::uint32_t, std::string> managers;
  for (const auto& m : this->managers()) managers[m.pid] = m.comm;
  const auto t0 = std::chrono::steady_clock::now();
  auto snapshot = std::make_shared<KernelSnapshot>(kernel_locks_.read("/proc", managers));
  mark_shared_kernel_threads(*snapshot);
  reconcile_us_ = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  reconcile_locks_ = snapshot->locks.size();
  ++reconciles_;
  spdlog::debug("locks: reconcile: {} kernel lock(s) of {} manager process(es), read in {} us",
                reconcile_locks_, snapshot->managers.size(), reconcile_us_);
  LockChange c;
  c.kind = LockChange::Kind::reconciled;
  c.time_ns = snapshot->time_ns;
  c.snapshot = std::move(snapshot);
  if (on_change_) on_change_(c);
}

// Kernel lockd is one thread for every network namespace's NFS server, and /proc/locks names
// neither: once another namespace's lockd events were seen, or another namespace runs an NFS
// server (after a restart no event may come), a lock only /proc/locks shows may be another
// node's, so the reconcile must not adopt it (see KernelSnapshot::kernel_threads_shared).
void BpfLockCapture::mark_shared_kernel_threads(KernelSnapshot& snapshot) {
  if (snapshot.kernel_threads.empty()) return;
  std::string why;
  if (other_netns_events_ > 0) {
    why = fmt::format("{} lock event(s) of other namespaces seen", other_netns_events_);
  } else if (auto other = find_other_nfs_server("/proc", netns_.own())) {
    why = fmt::format("rpc.mountd pid {} runs in network namespace {}", other->pid, other->netns);
  } else {
    return;
  }
  snapshot.kernel_threads_shared = true;
  if (std::exchange(shared_logged_, true)) return;
  spdlog::info(
      "locks: kernel lockd also serves another network namespace's NFS server ({}): the "
      "reconcile removes lockd ranges the kernel no longer holds but adds none that only "
      "/proc/locks shows (it cannot tell whose they are)",
      why);
}

void BpfLockCapture::on_ring_event(const void* data, std::size_t size) {
  lf_event_header hdr{};
  if (size < sizeof(hdr)) return;
  std::memcpy(&hdr, data, sizeof(hdr));
  if (hdr.version == LF_EVENTS_VERSION && hdr.kind == LF_EV_MANAGER_ADDED) {
    manager_added(hdr.pid);
    return;
  }
  if (hdr.version != LF_EVENTS_VERSION ||
      (hdr.kind != LF_EV_LOCK_GRANTED && hdr.kind != LF_EV_LOCK_RELEASED)) {
    log::warn_limited("locks: unexpected BPF event",
                      "locks: unexpected BPF event (version {}, kind {}), ignored", hdr.version,
                      hdr.kind);
    return;
  }
  // Ring-buffer records are only 8-byte aligned; copy into an aligned buffer (~1.2 KiB).
  lf_lock_event& e = event_;
  if (size < sizeof(e)) {
    log::warn_limited("locks: short lock event",
                      "locks: short lock event ({} of {} bytes), ignored", size, sizeof(e));
    return;
  }
  std::memcpy(&e, data, sizeof(e));
  e.hdr.comm[sizeof(e.hdr.comm) - 1] = 0;
  e.manager_comm[sizeof(e.manager_comm) - 1] = 0;
  e.nlm_host[sizeof(e.nlm_host) - 1] = 0;
  handle(e);
}

// The kernel side added `pid` on exec/rename: verified now, and given its uprobes, rather than at
// the next rescan.
void BpfLockCapture::manager_added(std::uint32_t pid) {
  track_if_manager(pid);
  sync_uprobes();
}

void BpfLockCapture::handle(const lf_lock_event& e) {
  if (e.start < 0 || e.end < e.start) {
    log::warn_limited("locks: lock event with a bad range", "locks: event with range {}-{} ignored",
                      e.start, e.end);
    return;
  }
  // Another node's lock (another NFS server on this kernel): its own lockferryd records it.
  if (!netns_.keeps(e.netns)) {
    ++other_netns_events_;
    return;
  }
  // Added by the kernel side on exec/rename since the last rescan: verified here first.
  if (!managers_.contains(e.hdr.pid)) {
    const std::string comm = e.manager_comm[0] ? e.manager_comm : e.hdr.comm;
    auto [verdict, fresh] = event_verdicts_.try_emplace(e.hdr.pid, false);
    if (fresh && is_real_manager(e.hdr.pid, comm)) {
      verdict->second = true;
      managers_[e.hdr.pid] = comm;
      spdlog::info("locks: tracking lock manager {} (pid {})", comm, e.hdr.pid);
      sync_uprobes();
    }
    if (!verdict->second) {
      ++impostor_events_;
      return;
    }
  }
  LockChange c;
  c.kind =
      e.hdr.kind == LF_EV_LOCK_GRANTED ? LockChange::Kind::granted : LockChange::Kind::released;
  c.write = e.type == LF_F_WRLCK;
  c.dev = e.dev;
  c.ino = e.ino;
  c.ofd = (e.fl_flags & LF_FL_OFDLCK) != 0;
  c.on_close = (e.fl_flags & LF_FL_CLOSE) != 0;
  c.owner = hasher_(e.owner);
  c.start = static_cast<std::uint64_t>(e.start);
  c.end = e.end == LF_OFFSET_MAX ? LockRecord::kToEndOfFile : static_cast<std::uint64_t>(e.end);
  c.manager_comm = e.manager_comm[0] ? e.manager_comm : e.hdr.comm;
  c.manager_pid = e.hdr.pid;
  c.owner_pid = e.fl_pid;
  c.path = event_path(e);
  c.nlm_host = e.nlm_host;
  c.client_addr = net::sockaddr_text(e.nlm_client_addr, sizeof(e.nlm_client_addr));
  c.server_addr = net::sockaddr_text(e.nlm_server_addr, sizeof(e.nlm_server_addr));
  // The kernel stamps CLOCK_MONOTONIC; records keep wall-clock time.
  c.time_ns = clock::now_ns() - (clock::monotonic_ns() - static_cast<std::int64_t>(e.hdr.ts_ns));
  // The arguments alone cost more than the rest of the event: only when debugging.
  if (spdlog::should_log(spdlog::level::debug))
    spdlog::debug(
        "locks: {} {}-{} of {} (dev {}:{} ino {}) by {} pid {} (thread {}) owner {:#x} fl_pid "
        "{} netns {}{}{}{}",
        c.kind == LockChange::Kind::released ? "released"
                                             : (c.write ? "granted write" : "granted read"),
        c.start, c.end == LockRecord::kToEndOfFile ? std::string("EOF") : std::to_string(c.end),
        c.path.empty() ? "?" : c.path, c.dev >> 20, c.dev & 0xfffff, c.ino, c.manager_comm,
        c.manager_pid, e.hdr.comm, c.owner, c.owner_pid, e.netns,
        e.source == LF_LOCK_SRC_LOCKS_REMOVE_POSIX ? " on close" : "",
        c.nlm_host.empty() ? "" : " for NLM client " + c.nlm_host,
        c.server_addr.empty() ? "" : fmt::format(" ({} via {})", c.client_addr, c.server_addr));
  ++changes_;
  if (on_change_) on_change_(c);
}

std::array<std::uint64_t, LF_LCNT_MAX> BpfLockCapture::read_counters() const {
  return sum_per_cpu<LF_LCNT_MAX>(skel() ? skel()->maps.lock_counters : nullptr);
}

void BpfLockCapture::check_drops() {
  // The table may now miss grants or keep released locks: reconcile it with the kernel shortly
  // (reconcile() counts and logs the drops).
  if (read_counters()[LF_LCNT_DROPS] > seen_drops_) reconcile_soon();
}

// One reconcile shortly, however many ask for it meanwhile.
void BpfLockCapture::reconcile_soon() {
  if (drop_reconcile_pending_ || stopped_) return;
  drop_reconcile_pending_ = true;
  drop_timer_.expires_after(kReconcileAfterDrops);
  drop_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled by stop() or by a reconcile that ran first
    reconcile();
  });
}

LockCounters BpfLockCapture::counters() const {
  const auto c = read_counters();
  LockCounters out;
  out.hits = c[LF_LCNT_HITS];
  out.grants = c[LF_LCNT_GRANTS];
  out.releases = c[LF_LCNT_RELEASES];
  out.refused = c[LF_LCNT_FAILED];
  out.drops = c[LF_LCNT_DROPS];
  out.path_truncated = c[LF_LCNT_PATH_TRUNCATED];
  out.manager_adds = c[LF_LCNT_MANAGER_ADDS];
  out.changes = changes_;
  out.reconciles = reconciles_;
  out.reconciles_after_drops = reconciles_after_drops_;
  out.reconcile_locks = reconcile_locks_;
  out.reconcile_us = reconcile_us_;
  out.impostors = impostors_seen_;
  out.impostors_refused_in_kernel = c[LF_LCNT_IMPOSTORS];
  out.impostor_events = impostor_events_;
  out.other_netns_events = other_netns_events_;
  return out;
}

std::vector<ManagerProcess> BpfLockCapture::managers() const {
  // Verified ones only: a process the kernel side added since is verified by its first event,
  // the next rescan or reconcile.
  std::vector<ManagerProcess> out;
  for (const auto& [pid, comm] : managers_) out.push_back({pid, comm});
  return out;
}

void BpfLockCapture::rescan() {
  if (stopped_ || !skel()) return;
  // Releases by a manager that is exiting are queued before it disappears from /proc: apply them
  // before deciding that it is gone.
  poll();
  const int fd = bpf_map__fd(skel()->maps.lock_managers);
  std::map<std::uint32_t, std::string> now;
  std::vector<ManagerProcess> gone;
  // Every rescan checks each process again: a manager that exec()s another binary or drops
  // root stops being one.
  for (const auto& m :
       find_manager_processes("/proc", names_, static_cast<std::uint32_t>(::getpid())))
    if (is_real_manager(m.pid, m.comm)) now[m.pid] = m.comm;
  // The kernel side may have added a process that exec()ed or renamed itself after our scan;
  // anything else in the map that is not a manager now is dead, renamed or an impostor: take it
  // out.
  for (std::uint32_t pid : map_pids()) {
    if (now.contains(pid)) continue;
    std::string comm = procfs::read_comm("/proc", pid);
    if (named_as_manager(comm) && is_real_manager(pid, comm)) {
      now[pid] = comm;
    } else {
      bpf_map_delete_elem(fd, &pid);
      // Added by the kernel side and gone before we saw it: whatever it held is released too.
      if (!managers_.contains(pid) && !impostors_.contains(pid)) gone.push_back({pid, comm});
    }
  }
  // Impostors that exited or took another name: a process with that pid later is a new one.
  std::erase_if(impostors_, [](const auto& entry) {
    return procfs::read_comm("/proc", entry.first) != entry.second;
  });
  for (const auto& [pid, comm] : now) {
    if (managers_.contains(pid)) continue;
    lf_manager_value v{LF_ADDED_BY_SCAN, 0};
    mark_manager(skel(), pid);
    if (bpf_map_update_elem(fd, &pid, &v, BPF_NOEXIST) != 0 && errno != EEXIST) {
      spdlog::error("locks: cannot track lock manager {} (pid {}): {}", comm, pid,
                    strerror_text(errno));
      continue;
    }
    spdlog::info("locks: tracking lock manager {} (pid {})", comm, pid);
  }
  for (const auto& [pid, comm] : managers_) {
    if (now.contains(pid)) continue;
    bpf_map_delete_elem(fd, &pid);
    gone.push_back({pid, comm});
  }
  managers_ = std::move(now);
  sync_uprobes();
  for (const auto& g : gone) {
    spdlog::info("locks: lock manager {} (pid {}) is gone; the kernel released its locks", g.comm,
                 g.pid);
    if (on_gone_) on_gone_(g);
  }
}

Result<void> BpfLockCapture::set_managers(const std::vector<std::string>& names,
                                          const std::vector<std::string>& binaries) {
  if (!skel()) return make_error("lock capture is stopped");
  if (auto r = check_manager_names(names); !r) return r;
  if (hook_ == LockHook::kprobe && !kprobe_hooks_cover(names))
    return make_error(
        "the kprobe lock hooks see only kernel lockd's locks: restart lockferryd to record the "
        "locks of other managers");
  // The uprobe set without lockd's kprobes (lockd was not configured or not in this kernel).
  if (hook_ == LockHook::uprobe && bpf_program__fd(skel()->progs.kprobe__enter_nlmsvc_lock) < 0 &&
      std::find(names.begin(), names.end(), kKernelLockdName) != names.end() &&
      lockd_presence().state != LockdPresence::State::absent)
    return make_error(
        "the uprobe lock hooks were loaded without kernel lockd's kprobes: restart lockferryd to "
        "record kernel lockd's locks");
  names_ = names;
  binaries_ = binaries;
  if (auto r = fill_names(); !r) return r;
  rescan();
  return {};
}

void BpfLockCapture::stop() {
  if (stopped_) return;
  stopped_ = true;
  rescan_timer_.cancel();
  reconcile_timer_.cancel();
  drop_timer_.cancel();
  uprobe_timer_.cancel();
  uprobes_ = {};
  ganesha_ = {};   // the uprobes' links first: they hold the programs
  loader_.stop();  // ring buffer, pins, then the skeleton (links detach, programs and maps go)
}

}  // namespace

Result<std::unique_ptr<LockCapture>> LockCapture::start(boost::asio::io_context& io,
                                                        const LockOptions& options,
                                                        ChangeHandler on_change,
                                                        ManagerGoneHandler on_manager_gone) {
  auto capture =
      std::make_unique<BpfLockCapture>(io, std::move(on_change), std::move(on_manager_gone));
  if (auto r = capture->init(options); !r) {
    capture->stop();
    return r.error();
  }
  return std::unique_ptr<LockCapture>(std::move(capture));
}

}  // namespace lockferry::capture
