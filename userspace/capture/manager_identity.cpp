// SPDX-License-Identifier: Apache-2.0
// Lock manager identity from /proc; see manager_identity.h.
#include "capture/manager_identity.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <fstream>
#include <sstream>

#include "lockferry/result.h"

namespace lockferry::capture {
namespace {

constexpr std::uint64_t kPfKthread = 0x00200000;  // include/linux/sched.h
constexpr std::string_view kDeleted = " (deleted)";

std::string proc_path(const std::string& proc_root, std::uint32_t pid, std::string_view file) {
  return fmt::format("{}/{}/{}", proc_root, pid, file);
}

// "Uid:\t0\t0\t0\t0" -> real and effective uid.
void read_uids(const std::string& path, ProcessIdentity& p) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("Uid:")) continue;
    std::istringstream fields(line.substr(4));
    std::uint32_t real = 0, effective = 0;
    if (fields >> real >> effective) {
      p.uid = real;
      p.euid = effective;
    }
    return;
  }
}

}  // namespace

bool ProcStat::kernel_thread() const { return (flags & kPfKthread) != 0; }

std::optional<ProcStat> read_proc_stat(const std::string& proc_root, std::uint32_t pid) {
  std::ifstream in(proc_path(proc_root, pid, "stat"));
  std::string stat;
  if (!in || !std::getline(in, stat)) return std::nullopt;
  // The fields after the comm follow its last ')': the comm itself may hold spaces or ')'.
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(paren + 1));
  std::string state;
  long long ppid = 0, pgrp = 0, session = 0, tty = 0, tpgid = 0;
  unsigned long long flags = 0;
  if (!(fields >> state >> ppid >> pgrp >> session >> tty >> tpgid >> flags)) return std::nullopt;
  return ProcStat{static_cast<std::uint32_t>(ppid), flags};
}

ProcessIdentity read_process_identity(const std::string& proc_root, std::uint32_t pid) {
  ProcessIdentity p;
  p.pid = pid;
  const auto stat = read_proc_stat(proc_root, pid);
  if (!stat) return p;
  p.exists = true;
  p.kernel_thread = stat->kernel_thread();
  p.ppid = stat->ppid;
  read_uids(proc_path(proc_root, pid, "status"), p);
  const std::string exe = proc_path(proc_root, pid, "exe");
  char target[PATH_MAX];
  const ssize_t n = ::readlink(exe.c_str(), target, sizeof target - 1);
  if (n > 0)
    p.exe.assign(target, static_cast<std::size_t>(n));
  else
    p.exe_error = errno;
  struct stat st {};
  if (::stat(exe.c_str(), &st) == 0) p.exe_file = std::pair{st.st_dev, st.st_ino};
  return p;
}

std::string why_not_a_manager(const ProcessIdentity& p, const std::vector<std::string>& binaries) {
  if (!p.exists) return "it is gone";
  if (p.kernel_thread) return {};
  if (!p.uid || !p.euid) return "its user cannot be read";
  if (*p.uid != 0 || *p.euid != 0)
    return fmt::format("runs as uid {} (effective {}), not root", *p.uid, *p.euid);
  if (p.exe.empty() && !p.exe_file)
    return fmt::format("its executable cannot be read ({})", strerror_text(p.exe_error));
  std::string_view exe = p.exe;
  // The running binary of a manager whose package was upgraded under it.
  if (exe.ends_with(kDeleted)) exe.remove_suffix(kDeleted.size());
  for (const auto& b : binaries) {
    if (exe == b) return {};
    struct stat st {};
    if (p.exe_file && ::stat(b.c_str(), &st) == 0 && st.st_dev == p.exe_file->first &&
        st.st_ino == p.exe_file->second)
      return {};
  }
  return fmt::format("runs {}, which is not one of the lock manager binaries ({})",
                     p.exe.empty() ? std::string("an unreadable executable") : p.exe,
                     binaries.empty() ? std::string("none configured")
                                      : fmt::format("{}", fmt::join(binaries, ", ")));
}

}  // namespace lockferry::capture
