// SPDX-License-Identifier: Apache-2.0
// fanotify and inotify capture modes; see notify_capture.h. Both read a non-blocking fd when
// asio says it is readable, translate each event with the same rules as the BPF mode, and
// rescan every directory when the kernel queue overflowed.
#include "capture/notify_capture.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cerrno>
#include <cstring>
#include <map>

#include "capture/changes.h"
#include "common/log.h"
#include "procfs/process.h"

namespace lockferry::capture {

namespace {

std::string comm_of(std::uint32_t pid) {
  return pid == 0 ? std::string() : procfs::read_comm("/proc", pid);
}

// The read loop shared by both modes; subclasses parse the bytes.
class NotifyCapture : public Capture {
 public:
  NotifyCapture(boost::asio::io_context& io, ChangeHandler on_change, ResyncHandler on_resync)
      : io_(io), on_change_(std::move(on_change)), on_resync_(std::move(on_resync)) {}
  ~NotifyCapture() override { stop(); }

  std::string mode_reason() const override { return reason_; }
  Counters counters() const override { return counters_; }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    if (fd_) {
      boost::system::error_code ec;
      fd_->close(ec);  // pending wait completes with operation_aborted; closes the notify fd
      fd_.reset();
    }
  }

 protected:
  void start_reading(int fd) {
    fd_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fd);
    arm();
  }

  // Parses `len` bytes of events and delivers the changes they describe.
  virtual void parse(const char* buf, std::size_t len) = 0;

  void deliver(const RawFileEvent& raw) {
    for (const auto& change : translate(raw)) {
      ++counters_.changes;
      if (on_change_) on_change_(change);
    }
  }

  void resync_all(const char* why) {
    ++counters_.drops;
    log::warn_limited("capture: lost file events",
                      "capture: {} lost events ({}); rescanning {} monitor directories",
                      to_string(mode()), why, dirs_.size());
    if (!on_resync_) return;
    for (const auto& [key, dir] : dirs_) on_resync_(dir);
  }

  int raw_fd() const { return fd_ ? fd_->native_handle() : -1; }

  boost::asio::io_context& io_;
  ChangeHandler on_change_;
  ResyncHandler on_resync_;
  Counters counters_;
  std::string reason_;
  std::map<std::string, std::string> dirs_;  // mode-specific key (handle bytes / wd) -> path

 private:
  void arm() {
    fd_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                    [this](const boost::system::error_code& ec) {
                      if (ec == boost::asio::error::operation_aborted)
                        return;  // stopped; `this` may be gone
                      if (ec) {
                        spdlog::error("capture: waiting on the {} fd failed: {}", to_string(mode()),
                                      ec.message());
                        return;
                      }
                      // Events are read in one aligned buffer; the kernel never splits an event
                      // across reads.
                      alignas(8) static std::array<char, 64 * 1024> buf;
                      for (;;) {
                        ssize_t n = ::read(fd_->native_handle(), buf.data(), buf.size());
                        if (n > 0) {
                          parse(buf.data(), static_cast<std::size_t>(n));
                          continue;
                        }
                        if (n < 0 && errno == EINTR) continue;
                        if (n < 0 && errno != EAGAIN)
                          spdlog::error("capture: reading the {} fd failed: {}", to_string(mode()),
                                        strerror_text(errno));
                        break;
                      }
                      if (!stopped_) arm();
                    });
  }

  std::unique_ptr<boost::asio::posix::stream_descriptor> fd_;
  bool stopped_ = false;
};

/* ---------------- fanotify ---------------- */

constexpr std::uint64_t kFanMask =
    FAN_CLOSE_WRITE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_DELETE | FAN_EVENT_ON_CHILD;

// fsid + handle type + handle bytes: what a FAN_EVENT_INFO_TYPE_DFID_NAME record names a
// directory by, compared byte-wise with name_to_handle_at() of each watched directory.
Result<std::string> fanotify_dir_key(const std::string& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0)
    return make_errno_error(errno, "cannot statfs watched directory {}", path);
  alignas(file_handle) std::array<char, sizeof(file_handle) + MAX_HANDLE_SZ> storage{};
  auto* fh = reinterpret_cast<file_handle*>(storage.data());
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (::name_to_handle_at(AT_FDCWD, path.c_str(), fh, &mount_id, 0) != 0)
    return make_errno_error(errno, "cannot get a file handle for watched directory {}", path);
  std::string key(reinterpret_cast<const char*>(&st.f_fsid), sizeof(st.f_fsid));
  key.append(reinterpret_cast<const char*>(&fh->handle_type), sizeof(fh->handle_type));
  key.append(reinterpret_cast<const char*>(fh->f_handle), fh->handle_bytes);
  return key;
}

class FanotifyCapture final : public NotifyCapture {
 public:
  using NotifyCapture::NotifyCapture;

  Result<void> init(const Options& options, const std::string& note) {
    int fd = ::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME,
                             O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return make_errno_error(errno,
                              "fanotify_init(FAN_REPORT_DFID_NAME) failed (needs Linux 5.9+ and "
                              "CAP_SYS_ADMIN, or 5.13+ for unprivileged use)");
    start_reading(fd);
    if (auto r = set_dirs(options.dirs); !r) return r;
    reason_ =
        "fanotify: FAN_REPORT_DFID_NAME with FAN_CLOSE_WRITE, FAN_MOVED_FROM/TO, FAN_DELETE" + note;
    return {};
  }

  Mode mode() const override { return Mode::fanotify; }

  Result<void> set_dirs(const std::vector<std::string>& dirs) override {
    std::map<std::string, std::string> next;
    for (const auto& path : dirs) {
      auto key = fanotify_dir_key(path);
      if (!key) return key.error();
      next[*key] = path;
    }
    for (const auto& [key, path] : next) {
      if (dirs_.contains(key)) continue;
      if (::fanotify_mark(raw_fd(), FAN_MARK_ADD | FAN_MARK_ONLYDIR, kFanMask, AT_FDCWD,
                          path.c_str()) != 0)
        return make_errno_error(errno, "fanotify_mark({}) failed", path);
    }
    for (const auto& [key, path] : dirs_) {
      if (next.contains(key)) continue;
      if (::fanotify_mark(raw_fd(), FAN_MARK_REMOVE | FAN_MARK_ONLYDIR, kFanMask, AT_FDCWD,
                          path.c_str()) != 0)
        spdlog::warn("capture: cannot remove fanotify mark on {}: {}", path, strerror_text(errno));
    }
    dirs_ = std::move(next);
    for (const auto& [key, path] : dirs_) spdlog::info("capture: watching {} with fanotify", path);
    return {};
  }

 private:
  void parse(const char* buf, std::size_t len) override {
    auto left = static_cast<long>(len);
    for (auto* meta = reinterpret_cast<const fanotify_event_metadata*>(buf);
         FAN_EVENT_OK(meta, left); meta = FAN_EVENT_NEXT(meta, left)) {
      ++counters_.emits;
      if (meta->fd >= 0) ::close(meta->fd);
      if (meta->vers != FANOTIFY_METADATA_VERSION) {
        spdlog::error("capture: fanotify metadata version {} (expected {})", meta->vers,
                      FANOTIFY_METADATA_VERSION);
        continue;
      }
      if (meta->mask & FAN_Q_OVERFLOW) {
        resync_all("fanotify queue overflow");
        continue;
      }
      std::string dir, name;
      const char* info = reinterpret_cast<const char*>(meta) + meta->metadata_len;
      const char* end = reinterpret_cast<const char*>(meta) + meta->event_len;
      while (info + sizeof(fanotify_event_info_header) <= end) {
        fanotify_event_info_header hdr{};
        std::memcpy(&hdr, info, sizeof(hdr));
        if (hdr.len == 0 || info + hdr.len > end) break;
        if (hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
          const char* p = info + sizeof(fanotify_event_info_header);
          std::string key(p, sizeof(__kernel_fsid_t));
          p += sizeof(__kernel_fsid_t);
          file_handle fh{};
          std::memcpy(&fh, p, sizeof(fh));
          key.append(reinterpret_cast<const char*>(&fh.handle_type), sizeof(fh.handle_type));
          key.append(p + sizeof(file_handle), fh.handle_bytes);
          const char* n = p + sizeof(file_handle) + fh.handle_bytes;
          if (n < info + hdr.len)
            name.assign(n, ::strnlen(n, static_cast<std::size_t>(info + hdr.len - n)));
          if (auto it = dirs_.find(key); it != dirs_.end()) dir = it->second;
        }
        info += hdr.len;
      }
      if (dir.empty() || name.empty()) continue;

      RawFileEvent raw;
      raw.pid = static_cast<std::uint32_t>(meta->pid);
      raw.comm = comm_of(raw.pid);
      // fanotify merges queued events on the same name, losing their order. When a merged
      // event both wrote and removed the name, the file's existence now says which came last.
      const bool wrote = meta->mask & (FAN_CLOSE_WRITE | FAN_MOVED_TO);
      const bool gone = meta->mask & (FAN_MOVED_FROM | FAN_DELETE);
      const bool exists_now =
          ::faccessat(AT_FDCWD, (dir + "/" + name).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0;
      const bool write_last = wrote && (!gone || exists_now);
      if (wrote && gone && write_last)
        deliver_removed(raw, dir, name);  // removed, then written again
      if (write_last && (meta->mask & FAN_CLOSE_WRITE)) {
        raw.kind = RawFileEvent::Kind::closed_after_write;
        raw.dir = dir;
        raw.name = name;
        deliver(raw);
      }
      if (write_last && (meta->mask & FAN_MOVED_TO)) {
        raw.kind = RawFileEvent::Kind::renamed;
        raw.dir = dir;
        raw.name = name;
        raw.old_dir.clear();
        raw.old_name.clear();
        deliver(raw);
      }
      if (gone && !write_last) deliver_removed(raw, dir, name);
    }
  }

  void deliver_removed(RawFileEvent raw, const std::string& dir, const std::string& name) {
    raw.kind = RawFileEvent::Kind::deleted;
    raw.dir = dir;
    raw.name = name;
    raw.old_dir.clear();
    raw.old_name.clear();
    deliver(raw);
  }
};

/* ---------------- inotify ---------------- */

constexpr std::uint32_t kInotifyMask =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR;

class InotifyCapture final : public NotifyCapture {
 public:
  using NotifyCapture::NotifyCapture;

  Result<void> init(const Options& options, const std::string& note) {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return make_errno_error(errno, "inotify_init1 failed");
    start_reading(fd);
    if (auto r = set_dirs(options.dirs); !r) return r;
    reason_ = "inotify: IN_CLOSE_WRITE, IN_MOVED_FROM/TO, IN_DELETE (no writer pid)" + note;
    return {};
  }

  Mode mode() const override { return Mode::inotify; }

  Result<void> set_dirs(const std::vector<std::string>& dirs) override {
    std::map<std::string, std::string> next;
    for (const auto& path : dirs) {
      // Adding an existing watch returns the same wd, so this is idempotent.
      int wd = ::inotify_add_watch(raw_fd(), path.c_str(), kInotifyMask);
      if (wd < 0) return make_errno_error(errno, "inotify_add_watch({}) failed", path);
      next[std::to_string(wd)] = path;
    }
    for (const auto& [wd, path] : dirs_)
      if (!next.contains(wd)) ::inotify_rm_watch(raw_fd(), std::stoi(wd));
    dirs_ = std::move(next);
    for (const auto& [wd, path] : dirs_) spdlog::info("capture: watching {} with inotify", path);
    return {};
  }

 private:
  void parse(const char* buf, std::size_t len) override {
    std::size_t off = 0;
    while (off + sizeof(inotify_event) <= len) {
      inotify_event ev{};
      std::memcpy(&ev, buf + off, sizeof(ev));
      const char* name_ptr = buf + off + sizeof(inotify_event);
      off += sizeof(inotify_event) + ev.len;
      ++counters_.emits;
      if (ev.mask & IN_Q_OVERFLOW) {
        resync_all("inotify queue overflow");
        continue;
      }
      auto it = dirs_.find(std::to_string(ev.wd));
      if (it == dirs_.end()) continue;
      if (ev.mask & IN_IGNORED) {
        spdlog::warn("capture: watched directory {} was removed or unmounted", it->second);
        continue;
      }
      std::string name(name_ptr, ::strnlen(name_ptr, ev.len));
      RawFileEvent raw;
      if (ev.mask & IN_CLOSE_WRITE) {
        raw.kind = RawFileEvent::Kind::closed_after_write;
        raw.dir = it->second;
        raw.name = name;
      } else if (ev.mask & IN_MOVED_TO) {
        raw.kind = RawFileEvent::Kind::renamed;
        raw.dir = it->second;
        raw.name = name;
      } else if (ev.mask & IN_MOVED_FROM) {
        raw.kind = RawFileEvent::Kind::renamed;
        raw.old_dir = it->second;
        raw.old_name = name;
      } else if (ev.mask & IN_DELETE) {
        raw.kind = RawFileEvent::Kind::deleted;
        raw.dir = it->second;
        raw.name = name;
      } else {
        continue;
      }
      deliver(raw);
    }
  }
};

}  // namespace

Result<std::unique_ptr<Capture>> start_fanotify(boost::asio::io_context& io, const Options& options,
                                                Capture::ChangeHandler on_change,
                                                Capture::ResyncHandler on_resync,
                                                const std::string& fallback_note) {
  auto capture = std::make_unique<FanotifyCapture>(io, std::move(on_change), std::move(on_resync));
  if (auto r = capture->init(options, fallback_note); !r) return r.error();
  return std::unique_ptr<Capture>(std::move(capture));
}

Result<std::unique_ptr<Capture>> start_inotify(boost::asio::io_context& io, const Options& options,
                                               Capture::ChangeHandler on_change,
                                               Capture::ResyncHandler on_resync,
                                               const std::string& fallback_note) {
  auto capture = std::make_unique<InotifyCapture>(io, std::move(on_change), std::move(on_resync));
  if (auto r = capture->init(options, fallback_note); !r) return r.error();
  return std::unique_ptr<Capture>(std::move(capture));
}

}  // namespace lockferry::capture
