// SPDX-License-Identifier: Apache-2.0
// Process facts from /proc; see process.h.
#include "procfs/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <fstream>
#include <sstream>

#include "common/files.h"

namespace lockferry::procfs {
namespace {

constexpr std::uint64_t kPfKthread = 0x00200000;  // include/linux/sched.h

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

std::string pid_path(const std::string& proc_root, std::uint32_t pid, std::string_view file) {
  return fmt::format("{}/{}/{}", proc_root, pid, file);
}

Result<std::string> read_proc_file(const std::string& path) {
  files::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return make_errno_error(errno, "cannot open {}", path);
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) return make_errno_error(errno, "cannot read {}", path);
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

std::string read_comm(const std::string& proc_root, std::uint32_t pid) {
  std::ifstream in(pid_path(proc_root, pid, "comm"));
  std::string comm;
  if (!in || !std::getline(in, comm)) return {};
  return comm;
}

bool ProcStat::kernel_thread() const { return (flags & kPfKthread) != 0; }

std::optional<ProcStat> read_proc_stat(const std::string& proc_root, std::uint32_t pid) {
  std::ifstream in(pid_path(proc_root, pid, "stat"));
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

bool is_kernel_thread(const std::string& proc_root, std::uint32_t pid) {
  const auto stat = read_proc_stat(proc_root, pid);
  return stat && stat->kernel_thread();
}

ProcessIdentity read_process_identity(const std::string& proc_root, std::uint32_t pid) {
  ProcessIdentity p;
  p.pid = pid;
  const auto stat = read_proc_stat(proc_root, pid);
  if (!stat) return p;
  p.exists = true;
  p.kernel_thread = stat->kernel_thread();
  p.ppid = stat->ppid;
  read_uids(pid_path(proc_root, pid, "status"), p);
  const std::string exe = pid_path(proc_root, pid, "exe");
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

}  // namespace lockferry::procfs
