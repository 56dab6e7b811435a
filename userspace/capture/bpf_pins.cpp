// SPDX-License-Identifier: Apache-2.0
// Pins of one BPF object; see bpf_pins.h.
#include "capture/bpf_pins.h"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "capture/bpf_programs.h"

namespace lockferry::capture {
namespace {

namespace fs = std::filesystem;

bool is_bpffs(const std::string& path) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 && static_cast<unsigned long>(st.f_type) == BPF_FS_MAGIC;
}

// Makes sure `pin_dir` can be created on a bpf filesystem, mounting bpffs on /sys/fs/bpf when
// the pin directory lives there and nothing is mounted yet (containers, minimal systems).
Result<void> ensure_bpffs(const std::string& pin_dir) {
  fs::path existing = pin_dir;
  std::error_code ec;
  while (!existing.empty() && !fs::exists(existing, ec)) existing = existing.parent_path();
  if (is_bpffs(existing)) return {};
  if (pin_dir.rfind("/sys/fs/bpf/", 0) != 0)
    return make_error(
        "pin directory {} is not on a bpf filesystem; mount one there "
        "(mount -t bpf bpf <dir>) or use /sys/fs/bpf/...",
        pin_dir);
  if (::mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0)
    return make_errno_error(errno,
                            "/sys/fs/bpf is not a bpf filesystem and mounting one failed "
                            "(mount -t bpf bpf /sys/fs/bpf)");
  spdlog::info("capture: mounted bpffs on /sys/fs/bpf for pinning");
  return {};
}

}  // namespace

// One live lockferry per pin directory. The pins themselves cannot say whether their owner is
// alive, so a flock()ed file in /run does: the kernel drops the lock when the owner dies, and
// only then are leftover pins "stale" and safe to replace.
Result<void> PinSet::pin(const std::string& dir, bpf_object* obj) {
  unpin();
  if (auto r = ensure_bpffs(dir); !r) return r;
  constexpr const char* kLockDir = "/run/lockferry";
  if (::mkdir(kLockDir, 0755) != 0 && errno != EEXIST)
    return make_errno_error(errno, "cannot create {} for the pin directory lock", kLockDir);
  std::string name = dir;
  for (char& c : name)
    if (c == '/') c = '_';
  const std::string lock_path = std::string(kLockDir) + "/pins" + name + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return make_errno_error(errno, "cannot open pin directory lock {}", lock_path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      return make_error(
          "pin directory {} belongs to another running lockferry (lock {} is held); "
          "give this instance its own pin_dir",
          dir, lock_path);
    return make_errno_error(err, "cannot lock {}", lock_path);
  }
  lock_fd_ = fd;
  lock_path_ = lock_path;

  std::error_code ec;
  if (fs::exists(dir, ec)) {
    // Left behind by a run that crashed: its programs are detached already (links die with the
    // process), but the pins keep stale objects alive and would make pinning fail with EEXIST.
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      spdlog::warn("capture: removing stale pin {} from a previous run", entry.path().string());
      fs::remove(entry.path(), ec);
    }
  } else if (!fs::create_directories(dir, ec) && ec) {
    unpin();
    return make_error("cannot create pin directory {}: {}", dir, ec.message());
  }
  dir_ = dir;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj) {
    std::string_view map_name = bpf_map__name(map);
    if (map_name.find('.') != std::string_view::npos) continue;  // .rodata/.bss internals
    const std::string path = dir + "/" + std::string(map_name);
    if (int err = bpf_map__pin(map, path.c_str()); err != 0) {
      unpin();
      return make_errno_error(-err, "cannot pin map {}", path);
    }
    pinned_.push_back(path);
  }
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    if (bpf_program__fd(prog) < 0) continue;  // not loaded (missing tracepoint, other variant)
    const std::string path = dir + "/" + program_short_name(prog);
    if (int err = bpf_program__pin(prog, path.c_str()); err != 0) {
      unpin();
      return make_errno_error(-err, "cannot pin program {}", path);
    }
    pinned_.push_back(path);
  }
  spdlog::info("capture: pinned {} maps and programs under {}", pinned_.size(), dir);
  return {};
}

void PinSet::unpin() {
  for (const auto& path : pinned_) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      spdlog::warn("capture: cannot remove pin {}: {}", path, strerror_text(errno));
  }
  pinned_.clear();
  if (!dir_.empty() && ::rmdir(dir_.c_str()) != 0 && errno != ENOENT)
    spdlog::warn("capture: cannot remove pin directory {}: {}", dir_, strerror_text(errno));
  dir_.clear();
  if (lock_fd_ >= 0) {
    // Unlink while still holding the lock, so no other instance can take over a file that is
    // about to disappear; then closing releases the flock.
    if (!lock_path_.empty()) ::unlink(lock_path_.c_str());
    ::close(lock_fd_);
  }
  lock_fd_ = -1;
  lock_path_.clear();
}

}  // namespace lockferry::capture
