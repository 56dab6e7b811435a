// SPDX-License-Identifier: Apache-2.0
// /proc/locks and fdinfo "lock:" lines -> ProcLock -> KernelSnapshot; see lock_kernel.h.
#include "capture/lock_kernel.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <ctime>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <tuple>

#include "capture/manager_identity.h"

namespace lockferry::capture {

namespace {

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t begin = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\n') ++i;
    if (i > begin) out.push_back(line.substr(begin, i - begin));
    if (i < line.size() && line[i] == '\n') break;
  }
  return out;
}

template <typename T>
bool parse_num(std::string_view text, T& out, int base = 10) {
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// Empty when the file cannot be read; `error` (when given) gets the errno of that failure, 0
// otherwise, so a caller can tell "no content" from "not allowed to look".
std::string read_small_file(const std::string& path, int* error = nullptr) {
  if (error) *error = 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (error) *error = errno;
    return {};
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && error) *error = errno;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::int64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

std::optional<ProcLock> parse_proc_lock_line(std::string_view line) {
  if (line.starts_with("lock:")) line.remove_prefix(5);
  const auto tok = split_ws(line);
  std::size_t i = 0;
  ProcLock l;
  if (tok.size() < 8 || !tok[0].ends_with(':') ||
      !parse_num(tok[0].substr(0, tok[0].size() - 1), l.id))
    return std::nullopt;
  ++i;
  if (tok[i] == "->") {
    l.waiting = true;
    ++i;
  }
  // kind, then one word (ADVISORY, *NOINODE*, or a lease's state), then the type.
  if (tok.size() < i + 7) return std::nullopt;
  l.kind = std::string(tok[i]);
  l.type = std::string(tok[i + 2]);
  if (!parse_num(tok[i + 3], l.pid)) return std::nullopt;
  // "fe:00:10953175": major and minor in hex, the inode in decimal. "<none>:0" has no inode.
  const std::string_view devino = tok[i + 4];
  const auto c1 = devino.find(':');
  const auto c2 = c1 == std::string_view::npos ? c1 : devino.find(':', c1 + 1);
  std::uint64_t major = 0, minor = 0;
  if (c2 == std::string_view::npos || !parse_num(devino.substr(0, c1), major, 16) ||
      !parse_num(devino.substr(c1 + 1, c2 - c1 - 1), minor, 16) ||
      !parse_num(devino.substr(c2 + 1), l.ino))
    return std::nullopt;
  l.dev = (major << 20) | minor;
  if (!parse_num(tok[i + 5], l.start)) return std::nullopt;
  if (tok[i + 6] == "EOF")
    l.end = LockRecord::kToEndOfFile;
  else if (!parse_num(tok[i + 6], l.end))
    return std::nullopt;
  return l;
}

std::vector<ProcLock> parse_proc_locks(std::string_view text) {
  std::vector<ProcLock> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (auto l = parse_proc_lock_line(line)) out.push_back(std::move(*l));
  }
  return out;
}

Result<std::vector<ProcLock>> read_proc_locks(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_errno_error(errno, "cannot open {}", path);
  ::close(fd);
  return parse_proc_locks(read_small_file(path));
}

bool is_kernel_thread(const std::string& proc_root, std::uint32_t pid) {
  const auto stat = read_proc_stat(proc_root, pid);
  return stat && stat->kernel_thread();
}

KernelSnapshot read_kernel_locks(const std::string& proc_root,
                                 const std::map<std::uint32_t, std::string>& managers) {
  KernelSnapshot snap;
  snap.time_ns = realtime_ns();
  for (const auto& [pid, comm] : managers) {
    if (is_kernel_thread(proc_root, pid)) continue;
    const std::string base = proc_root + "/" + std::to_string(pid);
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir((base + "/fd").c_str()), ::closedir);
    if (!dir) {
      if (errno != ENOENT && errno != ESRCH) {
        spdlog::warn(
            "locks: cannot list the files of lock manager {} (pid {}): {}; its locks are "
            "not reconciled",
            comm, pid, strerror_text(errno));
        continue;
      }
      snap.managers[pid] = comm;  // gone: the kernel released its locks
      continue;
    }
    // One process's POSIX locks show under each of its fds of the file: keep each once.
    std::map<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, bool>,
             KernelLock>
        posix;
    // OFD locks per open file: fds of one file (dup, fork) show the same locks once.
    struct OfdFile {
      int fd;
      std::uint64_t dev, ino;
      std::vector<KernelLock> locks;
    };
    std::vector<OfdFile> ofd_files;
    std::vector<int> fds;
    while (dirent* entry = ::readdir(dir.get())) {
      int fd = 0;
      if (parse_num(std::string_view(entry->d_name), fd)) fds.push_back(fd);
    }
    std::sort(fds.begin(), fds.end());
    // A manager whose fdinfo we may not read is left out of the snapshot, so its recorded
    // locks stay as they are: "cannot look" must never read as "holds no locks".
    int denied = 0;
    for (int fd : fds) {
      int error = 0;
      const std::string info = read_small_file(base + "/fdinfo/" + std::to_string(fd), &error);
      if (error != 0 && error != ENOENT) {
        denied = error;
        break;
      }
      if (info.find("\nlock:") == std::string::npos) continue;
      char target[PATH_MAX];
      const ssize_t n =
          ::readlink((base + "/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1);
      const std::string path = n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "";
      std::vector<KernelLock> ofd;
      for (const auto& l : parse_proc_locks(info)) {
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
        k.path = path;
        if (k.ofd)
          ofd.push_back(std::move(k));
        else
          posix.emplace(std::tuple(k.dev, k.ino, k.start, k.end, k.write), std::move(k));
      }
      if (ofd.empty()) continue;
      // Is this fd a file already seen (kcmp: same struct file)? Without kcmp, equal lock
      // lists on one inode are taken for one file.
      OfdFile* same = nullptr;
      for (auto& f : ofd_files) {
        if (f.dev != ofd.front().dev || f.ino != ofd.front().ino) continue;
        const long r = ::syscall(SYS_kcmp, pid, pid, KCMP_FILE, f.fd, fd);
        if (r == 0 || (r < 0 && f.locks == ofd)) {
          same = &f;
          break;
        }
      }
      if (same) continue;
      ofd_files.push_back({fd, ofd.front().dev, ofd.front().ino, std::move(ofd)});
    }
    if (denied != 0) {
      // Once per manager process: the reconcile timer would repeat it every few seconds.
      static std::mutex warned_mutex;
      static std::set<std::uint32_t> warned;
      std::lock_guard lock(warned_mutex);
      if (!warned.insert(pid).second) continue;
      spdlog::warn(
          "locks: cannot read the open files of lock manager {} (pid {}): {}; its locks are "
          "not reconciled (lockferryd needs CAP_SYS_PTRACE to read another process's fdinfo)",
          comm, pid, strerror_text(denied));
      continue;
    }
    snap.managers[pid] = comm;
    for (auto& [where, k] : posix) snap.locks.push_back(std::move(k));
    for (auto& f : ofd_files)
      for (auto& k : f.locks) {
        k.file_id = static_cast<std::uint64_t>(f.fd);
        snap.locks.push_back(std::move(k));
      }
  }
  return snap;
}

}  // namespace lockferry::capture
