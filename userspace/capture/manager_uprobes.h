// SPDX-License-Identifier: Apache-2.0
// The uprobe lock hook set's attachments: uprobes on the C library's fcntl (entry and return) and
// close inside each userspace lock manager process (NFS-Ganesha takes every NLM lock with
// fcntl(F_OFD_SETLK)). Attached with the process's pid, so the kernel writes the breakpoint only
// into that process's memory: no other process on the machine runs a program or takes a trap,
// unlike with any hook in the kernel's lock code. A process has its uprobes once the C library
// is mapped (a manager that just exec()ed is tried again shortly).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lockferry/result.h"

struct bpf_link;
struct bpf_program;

namespace lockferry::capture {

// The C library process `pid` has mapped: the path the uprobes go on, the mapped file itself
// (/proc/<pid>/map_files/<range>) where lockferryd may open it, else the path /proc/<pid>/maps
// shows when that is the same file here, else the same under /proc/<pid>/root (a manager in a
// container); and the path for logs. An error says why not, e.g. that nothing like a C library
// is mapped (yet).
struct MappedLibrary {
  std::string probe_path;
  std::string shown;
};
Result<MappedLibrary> mapped_c_library(const std::string& proc_root, std::uint32_t pid);

// Whether a uretprobe's trampoline would get a process under a seccomp filter killed on kernel
// `release` for machine `machine` (uname): x86_64 returns from uretprobes through a system call of
// its own since Linux 6.11, which seccomp filters saw (and systemd's or a container runtime's
// filters, not knowing it, refused with SIGSYS) until 6.13 let it through.
bool uretprobe_meets_seccomp(std::string_view release, std::string_view machine);

class ManagerUprobes {
 public:
  struct Programs {
    bpf_program* fcntl_entry = nullptr;
    bpf_program* fcntl_return = nullptr;
    bpf_program* close_entry = nullptr;
  };
  ManagerUprobes() = default;
  explicit ManagerUprobes(Programs programs) : programs_(programs) {}

  // Attaches the three programs in process `pid`; the error says why not (the process keeps
  // whatever was attached before).
  Result<void> attach(std::uint32_t pid);
  void detach(std::uint32_t pid);
  bool attached(std::uint32_t pid) const { return links_.contains(pid); }
  std::vector<std::uint32_t> pids() const;
  // The C library of each attached process, for status.
  const std::string& library(std::uint32_t pid) const;

 private:
  struct LinkDeleter {
    void operator()(bpf_link* link) const;
  };
  using Link = std::unique_ptr<bpf_link, LinkDeleter>;
  struct Attached {
    std::string library;
    std::vector<Link> links;
  };
  Programs programs_;
  std::map<std::uint32_t, Attached> links_;
};

}  // namespace lockferry::capture
