// SPDX-License-Identifier: Apache-2.0
// The eBPF capture mode; see bpf_capture.h. Steps: probe -> open -> turn off programs whose
// tracepoint is missing -> load -> fill maps -> attach -> pin -> consume the ring buffer.
#include "capture/bpf_capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <spdlog/spdlog.h>

#include "capture/bpf_support.h"
#include "capture/changes.h"
#include "capture/dir_keys.h"
#include "common/log.h"
#include "lockferry/events.h"
#include "statmon_watch.skel.h"

namespace lockferry::capture {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kProgPrefix = "tracepoint__syscalls__";
constexpr std::array<std::string_view, 6> kRequiredTracepoints = {
    "sys_enter_openat", "sys_exit_openat", "sys_enter_close",
    "sys_exit_close",   "sys_enter_unlinkat", "sys_exit_renameat2"};
constexpr int kO_EXCL = 0200;           // include/uapi/asm-generic/fcntl.h
constexpr unsigned kRenameExchange = 2;  // RENAME_EXCHANGE, include/uapi/linux/fs.h

std::string prog_short_name(const bpf_program* prog) {
  std::string_view name = bpf_program__name(prog);
  if (name.starts_with(kProgPrefix)) name.remove_prefix(kProgPrefix.size());
  return std::string(name);
}

struct SkelDeleter {
  void operator()(statmon_watch* skel) const { statmon_watch__destroy(skel); }
};
struct RingDeleter {
  void operator()(ring_buffer* ring) const { ring_buffer__free(ring); }
};

class BpfCapture final : public Capture {
 public:
  BpfCapture(boost::asio::io_context& io, ChangeHandler on_change, ResyncHandler on_resync)
      : io_(io), on_change_(std::move(on_change)), on_resync_(std::move(on_resync)) {}
  ~BpfCapture() override { stop(); }

  Result<void> init(const Options& options);

  Mode mode() const override { return Mode::bpf; }
  std::string mode_reason() const override { return reason_; }
  Counters counters() const override;
  Result<void> set_dirs(const std::vector<std::string>& dirs) override;
  void stop() override;

 private:
  struct Watched {
    std::string path;
    DirIdentity id;
    std::vector<PathKey> keys;
    std::uint32_t dir_id = 0;
  };

  static int on_ring_event(void* ctx, void* data, std::size_t size);
  void handle_event(const lf_file_event& e);
  void arm();
  void check_drops();
  std::array<std::uint64_t, LF_CNT_MAX> read_counters() const;
  std::string dir_path(std::uint32_t dir_id) const;

  boost::asio::io_context& io_;
  ChangeHandler on_change_;
  ResyncHandler on_resync_;
  std::unique_ptr<statmon_watch, SkelDeleter> skel_;
  std::unique_ptr<ring_buffer, RingDeleter> ring_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> ring_fd_;
  std::vector<Watched> dirs_;
  std::uint32_t next_dir_id_ = 1;
  PinSet pins_;
  std::uint64_t seen_drops_ = 0;
  std::uint64_t changes_ = 0;
  int programs_ = 0;
  std::string reason_;
  bool stopped_ = false;
};

Result<void> BpfCapture::init(const Options& options) {
  auto tracefs = ensure_tracefs();
  if (!tracefs) return tracefs.error();
  route_libbpf_logs();

  // open: parse the embedded object; nothing touches the kernel yet.
  skel_.reset(statmon_watch__open());
  if (!skel_) return make_errno_error(errno, "cannot open the statmon_watch BPF object");

  // open(2), creat(2), rename(2) and unlink(2) do not exist on every architecture.
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel_->obj) {
    const std::string name = prog_short_name(prog);
    if (::access((*tracefs + "/events/syscalls/" + name).c_str(), F_OK) == 0) {
      ++programs_;
      continue;
    }
    for (auto required : kRequiredTracepoints)
      if (name == required) return make_error("syscall tracepoint {} is missing in {}", name, *tracefs);
    spdlog::info("capture: tracepoint syscalls/{} not present, its program stays unloaded", name);
    bpf_program__set_autoload(prog, false);
  }

  // The ring buffer must be a power-of-two multiple of the page size (kernel/bpf/ringbuf.c).
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t ring_bytes = std::max<std::uint64_t>(std::uint64_t{options.ring_buffer_kb} * 1024, page);
  if ((ring_bytes & (ring_bytes - 1)) != 0)
    return make_error("capture ring buffer size {} KiB is not a power of two", options.ring_buffer_kb);
  if (int err = bpf_map__set_max_entries(skel_->maps.events, static_cast<std::uint32_t>(ring_bytes)); err != 0)
    return make_errno_error(-err, "cannot size the BPF ring buffer to {} bytes", ring_bytes);

  // load: the verifier checks every program; its log is at debug level on failure.
  if (int err = statmon_watch__load(skel_.get()); err != 0)
    return make_errno_error(-err, "loading the statmon_watch BPF programs failed (run with -v for the "
                            "libbpf/verifier log)");

  // Fill the directory maps before attaching, so the first event is already filtered right.
  if (auto r = set_dirs(options.dirs); !r) return r;

  // attach: one link per tracepoint, detached when the skeleton is destroyed.
  if (int err = statmon_watch__attach(skel_.get()); err != 0)
    return make_errno_error(-err, "attaching the statmon_watch programs to syscall tracepoints failed");

  // Pins are for debugging (bpftool); failing to pin must not stop the capture itself.
  std::string pin_note;
  if (!options.pin_dir.empty()) {
    if (auto r = pins_.pin(options.pin_dir, skel_->obj, prog_short_name); !r) {
      spdlog::warn("capture: not pinning BPF objects: {}", r.error().message);
      pin_note = ", not pinned: " + r.error().message;
    }
  }

  // The ring buffer's epoll fd becomes readable when events arrive; asio waits on a dup of it
  // (the stream_descriptor closes what it owns, ring_buffer__free closes the original).
  ring_.reset(ring_buffer__new(bpf_map__fd(skel_->maps.events), &BpfCapture::on_ring_event, this, nullptr));
  if (!ring_) return make_errno_error(errno, "cannot set up the BPF ring buffer reader");
  int fd = ::fcntl(ring_buffer__epoll_fd(ring_.get()), F_DUPFD_CLOEXEC, 0);  // not dup(): CLOEXEC
  if (fd < 0) return make_errno_error(errno, "cannot dup the ring buffer epoll fd");
  ring_fd_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fd);
  arm();

  reason_ = fmt::format("bpf: {} programs on syscall tracepoints ({}), {} KiB ring buffer{}", programs_,
                        *tracefs, ring_bytes / 1024,
                        pins_.dir().empty() ? pin_note : ", pinned under " + pins_.dir());
  return {};
}

void BpfCapture::arm() {
  ring_fd_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       [this](const boost::system::error_code& ec) {
                         // Aborted means stop() closed the descriptor: `this` may be gone.
                         if (ec == boost::asio::error::operation_aborted) return;
                         if (ec) {
                           spdlog::error("capture: waiting on the BPF ring buffer failed: {}", ec.message());
                           return;
                         }
                         int n = ring_buffer__consume(ring_.get());
                         if (n < 0)
                           log::warn_limited("capture: reading the BPF ring buffer failed",
                                             "capture: reading the BPF ring buffer failed: {}",
                                             strerror_text(-n));
                         check_drops();
                         if (!stopped_) arm();
                       });
}

int BpfCapture::on_ring_event(void* ctx, void* data, std::size_t size) {
  auto* self = static_cast<BpfCapture*>(ctx);
  lf_event_header hdr{};
  if (size < sizeof(hdr)) {
    log::warn_limited("capture: short BPF event", "capture: short BPF event ({} bytes), ignored",
                      size);
    return 0;
  }
  std::memcpy(&hdr, data, sizeof(hdr));
  if (hdr.version != LF_EVENTS_VERSION) {
    log::warn_limited("capture: BPF event of another version",
                      "capture: BPF event version {} (expected {}), ignored", hdr.version,
                      LF_EVENTS_VERSION);
    return 0;
  }
  if (hdr.kind >= LF_EV_FILE_CREATED && hdr.kind <= LF_EV_FILE_DELETED) {
    // Ring-buffer records are only 8-byte aligned; copy into a properly aligned local.
    lf_file_event e{};
    if (size < sizeof(e)) {
      log::warn_limited("capture: short file event",
                        "capture: short file event ({} of {} bytes), ignored", size, sizeof(e));
      return 0;
    }
    std::memcpy(&e, data, sizeof(e));
    e.name[sizeof(e.name) - 1] = 0;
    e.old_name[sizeof(e.old_name) - 1] = 0;
    e.hdr.comm[sizeof(e.hdr.comm) - 1] = 0;
    self->handle_event(e);
  }
  return 0;
}

std::string BpfCapture::dir_path(std::uint32_t dir_id) const {
  if (dir_id == 0) return {};
  for (const auto& d : dirs_)
    if (d.dir_id == dir_id) return d.path;
  return {};
}

void BpfCapture::handle_event(const lf_file_event& e) {
  RawFileEvent raw;
  raw.pid = e.hdr.pid;
  raw.comm = e.hdr.comm;
  raw.ts_ns = static_cast<std::int64_t>(e.hdr.ts_ns);
  raw.dir = dir_path(e.dir_id);
  raw.name = e.name;
  switch (e.hdr.kind) {
    case LF_EV_FILE_CREATED:
    case LF_EV_FILE_UPDATED:
      raw.kind = RawFileEvent::Kind::opened;
      break;
    case LF_EV_FILE_CLOSED:
      raw.kind = RawFileEvent::Kind::closed_after_write;
      raw.exclusive_create = (e.open_flags & kO_EXCL) != 0;
      break;
    case LF_EV_FILE_RENAMED:
      raw.kind = RawFileEvent::Kind::renamed;
      raw.old_dir = dir_path(e.old_dir_id);
      raw.old_name = e.old_name;
      raw.exchange = (e.rename_flags & kRenameExchange) != 0;
      break;
    case LF_EV_FILE_DELETED:
      raw.kind = RawFileEvent::Kind::deleted;
      break;
    default:
      return;
  }
  spdlog::trace("capture: bpf event kind {} dir {} name {} old {} {} pid {} comm {}", e.hdr.kind, raw.dir,
                raw.name, raw.old_dir, raw.old_name, raw.pid, raw.comm);
  if (raw.dir.empty() && raw.old_dir.empty()) {
    // An id from before a reload: that directory is no longer watched.
    spdlog::debug("capture: event for an unknown directory id {} ignored", e.dir_id);
    return;
  }
  for (const auto& change : translate(raw)) {
    ++changes_;
    if (on_change_) on_change_(change);
  }
}

std::array<std::uint64_t, LF_CNT_MAX> BpfCapture::read_counters() const {
  std::array<std::uint64_t, LF_CNT_MAX> sums{};
  if (!skel_) return sums;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return sums;
  std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(cpus));
  const int fd = bpf_map__fd(skel_->maps.counters);
  for (std::uint32_t i = 0; i < LF_CNT_MAX; ++i) {
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0) continue;
    for (auto v : per_cpu) sums[i] += v;
  }
  return sums;
}

Counters BpfCapture::counters() const {
  const auto c = read_counters();
  Counters out;
  out.hits = c[LF_CNT_HITS];
  out.emits = c[LF_CNT_EMITS];
  out.drops = c[LF_CNT_DROPS];
  out.changes = changes_;
  return out;
}

void BpfCapture::check_drops() {
  const auto drops = read_counters()[LF_CNT_DROPS];
  if (drops <= seen_drops_) return;
  log::warn_limited(
      "capture: the BPF ring buffer dropped events",
      "capture: the BPF ring buffer dropped {} event(s); rescanning {} monitor director{}",
      drops - seen_drops_, dirs_.size(), dirs_.size() == 1 ? "y" : "ies");
  seen_drops_ = drops;
  if (!on_resync_) return;
  for (const auto& d : dirs_) on_resync_(d.path);
}

Result<void> BpfCapture::set_dirs(const std::vector<std::string>& dirs) {
  if (!skel_) return make_error("capture is stopped");
  // Validate everything first: a reload either applies whole or not at all.
  std::vector<Watched> next;
  std::size_t path_keys_total = 0;
  for (const auto& path : dirs) {
    Watched w;
    w.path = path;
    auto id = dir_identity(path);
    if (!id) return id.error();
    auto keys = path_keys(path);
    if (!keys) return keys.error();
    w.id = *id;
    w.keys = std::move(*keys);
    path_keys_total += w.keys.size();
    for (const auto& old : dirs_)
      if (old.path == w.path && old.id == w.id) w.dir_id = old.dir_id;
    if (w.dir_id == 0) w.dir_id = next_dir_id_++;
    next.push_back(std::move(w));
  }
  if (next.size() > bpf_map__max_entries(skel_->maps.watched_dirs) ||
      path_keys_total > bpf_map__max_entries(skel_->maps.watched_paths))
    return make_error("too many watched directories ({}; the kernel maps hold {})", next.size(),
                      bpf_map__max_entries(skel_->maps.watched_dirs));

  const int dirs_fd = bpf_map__fd(skel_->maps.watched_dirs);
  const int paths_fd = bpf_map__fd(skel_->maps.watched_paths);
  auto dir_key = [](const DirIdentity& id) {
    lf_dir_key k{};
    k.dev = id.dev;
    k.ino = id.ino;
    return k;
  };
  auto path_key = [](const PathKey& pk) {
    lf_path_key k{};
    k.dev = pk.base.dev;
    k.ino = pk.base.ino;
    std::memcpy(k.rel, pk.rel.data(), std::min(pk.rel.size(), sizeof(k.rel) - 1));
    return k;
  };
  // Insert the new entries before deleting stale ones, so a directory kept across a reload is
  // never unwatched in between.
  std::set<std::pair<std::uint64_t, std::uint64_t>> keep_dirs;
  for (const auto& w : next) {
    lf_dir_key k = dir_key(w.id);
    lf_dir_value v{w.dir_id, 0};
    if (bpf_map_update_elem(dirs_fd, &k, &v, BPF_ANY) != 0)
      return make_errno_error(errno, "cannot add {} to the watched_dirs map", w.path);
    keep_dirs.insert({k.dev, k.ino});
    for (const auto& pk : w.keys) {
      lf_path_key key = path_key(pk);
      if (bpf_map_update_elem(paths_fd, &key, &v, BPF_ANY) != 0)
        return make_errno_error(errno, "cannot add {} to the watched_paths map", w.path);
    }
  }
  for (const auto& old : dirs_) {
    lf_dir_key k = dir_key(old.id);
    if (!keep_dirs.contains({k.dev, k.ino})) bpf_map_delete_elem(dirs_fd, &k);
    for (const auto& pk : old.keys) {
      bool kept = false;
      for (const auto& w : next)
        for (const auto& nk : w.keys)
          if (nk.base == pk.base && nk.rel == pk.rel) kept = true;
      if (kept) continue;
      lf_path_key key = path_key(pk);
      bpf_map_delete_elem(paths_fd, &key);
    }
  }
  dirs_ = std::move(next);
  for (const auto& w : dirs_)
    spdlog::info("capture: watching {} (dev {}:{} ino {}, dir id {}, {} path keys)", w.path, w.id.dev >> 20,
                 w.id.dev & 0xfffff, w.id.ino, w.dir_id, w.keys.size());
  return {};
}

void BpfCapture::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (ring_fd_) {
    boost::system::error_code ec;
    ring_fd_->close(ec);  // pending wait completes with operation_aborted
    ring_fd_.reset();
  }
  pins_.unpin();
  ring_.reset();
  skel_.reset();  // destroys links (detach), programs and maps
}

}  // namespace

Result<void> probe_bpf() {
  if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0)
    return make_errno_error(errno, "no kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF), "
                            "the CO-RE programs cannot be relocated");
  auto tracefs = ensure_tracefs();
  if (!tracefs) return tracefs.error();
  route_libbpf_logs();
  int r = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, nullptr);
  if (r < 0) return make_errno_error(-r, "cannot load tracepoint BPF programs (needs root or CAP_BPF+CAP_PERFMON)");
  if (r == 0) return make_error("the kernel does not support tracepoint BPF programs");
  if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) != 1)
    return make_error("the kernel has no BPF ring buffer (needs Linux 5.8+)");
  if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_loop, nullptr) != 1)
    return make_error("the kernel has no bpf_loop helper (needs Linux 5.17+)");
  return {};
}

Result<std::unique_ptr<Capture>> start_bpf(boost::asio::io_context& io, const Options& options,
                                           Capture::ChangeHandler on_change, Capture::ResyncHandler on_resync) {
  if (auto r = probe_bpf(); !r) return r.error();
  auto capture = std::make_unique<BpfCapture>(io, std::move(on_change), std::move(on_resync));
  if (auto r = capture->init(options); !r) {
    capture->stop();
    return r.error();
  }
  return std::unique_ptr<Capture>(std::move(capture));
}

}  // namespace lockferry::capture
