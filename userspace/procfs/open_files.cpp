// SPDX-License-Identifier: Apache-2.0
// Descriptors and their fdinfo lock lines from /proc; see open_files.h.
#include "procfs/open_files.h"

#include <dirent.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <memory>
#include <string_view>

#include "procfs/process.h"

namespace lockferry::procfs {

Result<std::vector<int>> list_fds(const std::string& proc_root, std::uint32_t pid) {
  const std::string path = pid_path(proc_root, pid, "fd");
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path.c_str()), ::closedir);
  if (!dir) return make_errno_error(errno, "cannot list {}", path);
  std::vector<int> fds;
  while (dirent* entry = ::readdir(dir.get())) {
    const std::string_view name(entry->d_name);
    int fd = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), fd);
    if (ec == std::errc() && end == name.data() + name.size()) fds.push_back(fd);
  }
  std::sort(fds.begin(), fds.end());
  return fds;
}

Result<FdLocks> read_fd_locks(const std::string& proc_root, std::uint32_t pid, int fd) {
  FdLocks out;
  out.fd = fd;
  auto info = read_proc_file(pid_path(proc_root, pid, "fdinfo/" + std::to_string(fd)));
  if (!info) {
    if (info.error().code == ENOENT) return out;  // closed since the listing
    return info.error();
  }
  if (info->find("\nlock:") == std::string::npos) return out;
  char target[PATH_MAX];
  const std::string link = pid_path(proc_root, pid, "fd/" + std::to_string(fd));
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n > 0) out.path.assign(target, static_cast<std::size_t>(n));
  out.locks = parse_proc_locks(*info);
  return out;
}

std::optional<bool> same_open_file(std::uint32_t pid, int a, int b) {
  const long r = ::syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b);
  if (r < 0) return std::nullopt;
  return r == 0;
}

}  // namespace lockferry::procfs
