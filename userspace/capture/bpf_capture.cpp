// SPDX-License-Identifier: Apache-2.0
// The eBPF capture mode; see bpf_capture.h. The loader (bpf_loader.h) runs the object's life;
// this file fills the watched-directory maps and turns ring-buffer events into FileChanges.
#include "capture/bpf_capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <set>
#include <span>
#include <vector>

#include "capture/bpf_loader.h"
#include "capture/bpf_maps.h"
#include "capture/changes.h"
#include "capture/dir_keys.h"
#include "common/log.h"
#include "lockferry/events.h"
#include "statmon_watch.skel.h"

namespace lockferry::capture {

namespace {

class BpfCapture final : public Capture {
 public:
  BpfCapture(boost::asio::io_context& io, ChangeHandler on_change, ResyncHandler on_resync)
      : loader_(io, LOCKFERRY_SKELETON(statmon_watch), "capture"),
        on_change_(std::move(on_change)),
        on_resync_(std::move(on_resync)) {}
  ~BpfCapture() override { stop(); }

  // Loads the first of `hook_sets` (Mode::fentry, kprobe, tracepoint) that loads and attaches.
  Result<void> init(const Options& options, std::span<const Mode> hook_sets,
                    const std::string& note);

  Mode mode() const override { return mode_; }
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

  statmon_watch* skel() const { return loader_.get(); }
  void on_ring_event(const void* data, std::size_t size);
  void handle_event(const lf_file_event& e);
  void check_drops();
  void set_inode_filter();
  std::array<std::uint64_t, LF_CNT_MAX> read_counters() const;
  std::string dir_path(std::uint32_t dir_id) const;

  BpfLoader<statmon_watch> loader_;
  ChangeHandler on_change_;
  ResyncHandler on_resync_;
  std::vector<Watched> dirs_;
  std::uint32_t next_dir_id_ = 1;
  std::uint64_t seen_drops_ = 0;
  std::uint64_t changes_ = 0;
  std::string reason_;
  Mode mode_ = Mode::bpf;
  bool stopped_ = false;
};

// The maps only the other hook sets use shrink to one entry, so they cost no memory.
void shrink_unused_maps(statmon_watch& skel) {
  const bool fentry = bpf_program__autoload(skel.progs.fentry__enter_fput);
  const bool kprobe = bpf_program__autoload(skel.progs.kprobe__enter_fput);
  if (fentry || kprobe) {
    bpf_map__set_max_entries(skel.maps.pending, 1);
    bpf_map__set_max_entries(skel.maps.tracked_fds, 1);
  } else {
    bpf_map__set_max_entries(skel.maps.rename_stash, 1);
  }
  if (!kprobe) bpf_map__set_max_entries(skel.maps.entry_args, 1);
}

std::string describe_hooks(Mode mode, int programs, const std::string& tracefs) {
  if (mode == Mode::fentry || mode == Mode::kprobe)
    return fmt::format(
        "{} programs on kernel functions ({}: __fput, vfs_rename, vfs_unlink, vfs_link); only "
        "directory-entry operations pay",
        programs, mode == Mode::fentry ? "fentry/fexit" : "kprobe/kretprobe");
  return fmt::format("{} programs on syscall tracepoints ({}); every syscall on the machine pays",
                     programs, tracefs);
}

Result<void> BpfCapture::init(const Options& options, std::span<const Mode> hook_sets,
                              const std::string& note) {
  std::vector<std::string_view> variants;
  bool tracepoints = false;
  for (Mode m : hook_sets) {
    variants.push_back(to_string(m));
    tracepoints = tracepoints || m == Mode::tracepoint;
  }
  // tracefs only matters to the tracepoint set; its probes say so when it is missing.
  std::string tracefs;
  if (tracepoints)
    if (auto t = ensure_tracefs()) tracefs = *t;

  LoadSteps<statmon_watch> steps;
  std::uint32_t ring_bytes = 0;
  steps.configure = [&](statmon_watch& skel) -> Result<void> {
    shrink_unused_maps(skel);
    auto bytes = size_ring_buffer(skel.maps.events, options.ring_buffer_kb, "capture");
    if (!bytes) return bytes.error();
    ring_bytes = *bytes;
    return {};
  };
  steps.fill = [&](statmon_watch&) { return set_dirs(options.dirs); };
  if (auto r = loader_.load(variants, tracefs, steps); !r) return r;
  for (Mode m : hook_sets)
    if (loader_.variant() == to_string(m)) mode_ = m;

  const std::string pin_note = loader_.pin(options.pin_dir);
  auto ring = loader_.ring().start(
      skel()->maps.events, "BPF",
      [this](const void* data, std::size_t size) { on_ring_event(data, size); },
      [this] { check_drops(); });
  if (!ring) return ring;

  const std::string tried = loader_.tried().empty() ? "" : "; " + loader_.tried();
  reason_ = fmt::format("{}: {}, {} KiB ring buffer{}{}{}", to_string(mode_),
                        describe_hooks(mode_, loader_.programs_loaded(), tracefs),
                        ring_bytes / 1024, pin_note, tried, note);
  return {};
}

void BpfCapture::on_ring_event(const void* data, std::size_t size) {
  lf_event_header hdr{};
  if (size < sizeof(hdr)) {
    log::warn_limited("capture: short BPF event", "capture: short BPF event ({} bytes), ignored",
                      size);
    return;
  }
  std::memcpy(&hdr, data, sizeof(hdr));
  if (hdr.version != LF_EVENTS_VERSION) {
    log::warn_limited("capture: BPF event of another version",
                      "capture: BPF event version {} (expected {}), ignored", hdr.version,
                      LF_EVENTS_VERSION);
    return;
  }
  if (hdr.kind >= LF_EV_FILE_CREATED && hdr.kind <= LF_EV_FILE_DELETED) {
    // Ring-buffer records are only 8-byte aligned; copy into a properly aligned local.
    lf_file_event e{};
    if (size < sizeof(e)) {
      log::warn_limited("capture: short file event",
                        "capture: short file event ({} of {} bytes), ignored", size, sizeof(e));
      return;
    }
    std::memcpy(&e, data, sizeof(e));
    e.name[sizeof(e.name) - 1] = 0;
    e.old_name[sizeof(e.old_name) - 1] = 0;
    e.hdr.comm[sizeof(e.hdr.comm) - 1] = 0;
    handle_event(e);
  }
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
      raw.exclusive_create = (e.open_flags & LF_O_EXCL) != 0;
      break;
    case LF_EV_FILE_RENAMED:
      raw.kind = RawFileEvent::Kind::renamed;
      raw.old_dir = dir_path(e.old_dir_id);
      raw.old_name = e.old_name;
      raw.exchange = (e.rename_flags & LF_RENAME_EXCHANGE) != 0;
      break;
    case LF_EV_FILE_DELETED:
      raw.kind = RawFileEvent::Kind::deleted;
      break;
    default:
      return;
  }
  spdlog::trace("capture: bpf event kind {} dir {} name {} old {} {} pid {} comm {}", e.hdr.kind,
                raw.dir, raw.name, raw.old_dir, raw.old_name, raw.pid, raw.comm);
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
  return sum_per_cpu<LF_CNT_MAX>(skel() ? skel()->maps.counters : nullptr);
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
  if (!skel()) return make_error("capture is stopped");
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
  if (next.size() > bpf_map__max_entries(skel()->maps.watched_dirs) ||
      path_keys_total > bpf_map__max_entries(skel()->maps.watched_paths))
    return make_error("too many watched directories ({}; the kernel maps hold {})", next.size(),
                      bpf_map__max_entries(skel()->maps.watched_dirs));

  const int dirs_fd = bpf_map__fd(skel()->maps.watched_dirs);
  const int paths_fd = bpf_map__fd(skel()->maps.watched_paths);
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
    auto& filter = skel()->bss->watched_ino_filter;
    filter[w.id.ino % std::size(filter)] = 1;  // before the exact entry

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
  set_inode_filter();
  for (const auto& w : dirs_)
    spdlog::info("capture: watching {} (dev {}:{} ino {}, dir id {}, {} path keys)", w.path,
                 w.id.dev >> 20, w.id.dev & 0xfffff, w.id.ino, w.dir_id, w.keys.size());
  return {};
}

// The function-level programs' first check: one byte per watched directory's inode number. Set
// for new directories before their map entries (set_dirs); rebuilt once the stale ones are gone.
void BpfCapture::set_inode_filter() {
  auto& filter = skel()->bss->watched_ino_filter;
  std::vector<std::uint8_t> next(std::size(filter), 0);
  for (const auto& w : dirs_) next[w.id.ino % next.size()] = 1;
  std::copy(next.begin(), next.end(), std::begin(filter));
}

void BpfCapture::stop() {
  if (stopped_) return;
  stopped_ = true;
  loader_.stop();
}

}  // namespace

Result<std::unique_ptr<Capture>> start_bpf(boost::asio::io_context& io, const Options& options,
                                           std::span<const Mode> hook_sets,
                                           Capture::ChangeHandler on_change,
                                           Capture::ResyncHandler on_resync,
                                           const std::string& note) {
  auto has = [&](Mode m) {
    return std::find(hook_sets.begin(), hook_sets.end(), m) != hook_sets.end();
  };
  // The program type probed is the fallback's: the weakest set asked for decides whether any runs.
  if (auto r = probe_bpf(has(Mode::tracepoint), has(Mode::kprobe)); !r) return r.error();
  auto capture = std::make_unique<BpfCapture>(io, std::move(on_change), std::move(on_resync));
  if (auto r = capture->init(options, hook_sets, note); !r) {
    capture->stop();
    return r.error();
  }
  return std::unique_ptr<Capture>(std::move(capture));
}

}  // namespace lockferry::capture
