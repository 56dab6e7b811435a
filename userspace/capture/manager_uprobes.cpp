// SPDX-License-Identifier: Apache-2.0
// Per-process uprobes of the uprobe lock hook set; see manager_uprobes.h.
#include "capture/manager_uprobes.h"

#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstdio>
#include <sstream>
#include <string_view>

#include "procfs/process.h"

namespace lockferry::capture {
namespace {

// glibc's libc.so.6 (libc-2.x.so before 2.34) or musl's loader, which is its C library too.
bool is_c_library(std::string_view path) {
  const auto slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  return name.starts_with("libc.so") || (name.starts_with("libc-") && name.ends_with(".so")) ||
         name.starts_with("ld-musl-");
}

// Whether `path` here is the file a maps line names by inode (not by device: the maps line shows
// the device of the file under an overlay, stat the overlay's; uprobes resolve to the former).
bool same_inode(const std::string& path, unsigned long inode) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && st.st_ino == inode;
}

// One function of the C library: its current name first, then older or other C libraries' name.
Result<bpf_link*> attach_function(bpf_program* prog, std::uint32_t pid, const std::string& library,
                                  std::initializer_list<const char*> names, bool retprobe) {
  int err = ENOENT;
  for (const char* name : names) {
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe, .func_name = name);
    if (bpf_link* link =
            bpf_program__attach_uprobe_opts(prog, static_cast<int>(pid), library.c_str(), 0, &opts))
      return link;
    err = errno;
  }
  return make_errno_error(err, "cannot attach a {} to {} of {} in pid {}",
                          retprobe ? "uretprobe" : "uprobe", *names.begin(), library, pid);
}

}  // namespace

Result<MappedLibrary> mapped_c_library(const std::string& proc_root, std::uint32_t pid) {
  auto maps = procfs::read_proc_file(procfs::pid_path(proc_root, pid, "maps"));
  if (!maps) return maps.error();
  std::istringstream lines(*maps);
  std::string line;
  while (std::getline(lines, line)) {
    unsigned long inode = 0;
    int range_end = 0, path_at = 0;
    // address perms offset major:minor inode path
    if (std::sscanf(line.c_str(), "%*[0-9a-f-]%n %*s %*s %*s %lu %n", &range_end, &inode,
                    &path_at) != 1 ||
        path_at <= 0 || inode == 0)
      continue;
    const std::string path = line.substr(static_cast<std::size_t>(path_at));
    if (!path.starts_with('/') || !is_c_library(path)) continue;
    // The mapped file itself (needs CAP_SYS_ADMIN), else the same file by its name.
    const std::string mapped = procfs::pid_path(proc_root, pid, "map_files") + "/" +
                               line.substr(0, static_cast<std::size_t>(range_end));
    if (::access(mapped.c_str(), R_OK) == 0) return MappedLibrary{mapped, path};
    if (same_inode(path, inode)) return MappedLibrary{path, path};
    const std::string inside = procfs::pid_path(proc_root, pid, "root") + path;
    if (same_inode(inside, inode)) return MappedLibrary{inside, path};
    return make_error("pid {} maps the C library {}, which is not that file here nor under {}", pid,
                      path, procfs::pid_path(proc_root, pid, "root"));
  }
  return make_error("pid {} has no C library mapped (yet)", pid);
}

bool uretprobe_meets_seccomp(std::string_view release, std::string_view machine) {
  unsigned major_v = 0, minor_v = 0;
  if (machine != "x86_64" ||
      std::sscanf(std::string(release).c_str(), "%u.%u", &major_v, &minor_v) != 2)
    return false;
  return major_v == 6 && (minor_v == 11 || minor_v == 12);
}

namespace {

// Why uprobes must not go into `pid` (a seccomp-filtered process on a kernel whose filters see the
// uretprobe system call), or "".
std::string why_not_uprobed(std::uint32_t pid) {
  utsname u{};
  if (::uname(&u) != 0 || !uretprobe_meets_seccomp(u.release, u.machine)) return {};
  auto status = procfs::read_proc_file(procfs::pid_path("/proc", pid, "status"));
  if (!status) return {};
  const auto at = status->find("\nSeccomp:");
  if (at == std::string::npos) return {};
  const auto mode = status->find_first_not_of(" \t", at + 9);
  if (mode == std::string::npos || (*status)[mode] != '2') return {};
  return fmt::format(
      "it runs under a seccomp filter, and on Linux {} the return probe's system call would "
      "get it killed",
      u.release);
}

}  // namespace

void ManagerUprobes::LinkDeleter::operator()(bpf_link* link) const { bpf_link__destroy(link); }

Result<void> ManagerUprobes::attach(std::uint32_t pid) {
  if (attached(pid)) return {};
  if (const std::string why = why_not_uprobed(pid); !why.empty()) return make_error("{}", why);
  auto library = mapped_c_library("/proc", pid);
  if (!library) return library.error();
  Attached out{library->shown, {}};
  struct Probe {
    bpf_program* prog;
    std::initializer_list<const char*> names;
    bool retprobe;
  };
  // fcntl64 is glibc's name since 2.28 (what callers built with 64-bit offsets bind to; the
  // same code as fcntl on 64-bit machines), fcntl musl's and older glibc's.
  const Probe probes[] = {{programs_.fcntl_entry, {"fcntl64", "fcntl"}, false},
                          {programs_.fcntl_return, {"fcntl64", "fcntl"}, true},
                          {programs_.close_entry, {"close"}, false}};
  for (const auto& p : probes) {
    auto link = attach_function(p.prog, pid, library->probe_path, p.names, p.retprobe);
    if (!link) return link.error();
    out.links.emplace_back(*link);
  }
  links_[pid] = std::move(out);
  return {};
}

void ManagerUprobes::detach(std::uint32_t pid) { links_.erase(pid); }

std::vector<std::uint32_t> ManagerUprobes::pids() const {
  std::vector<std::uint32_t> out;
  for (const auto& [pid, a] : links_) out.push_back(pid);
  return out;
}

const std::string& ManagerUprobes::library(std::uint32_t pid) const {
  static const std::string none;
  auto it = links_.find(pid);
  return it == links_.end() ? none : it->second.library;
}

}  // namespace lockferry::capture
