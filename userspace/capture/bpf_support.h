// SPDX-License-Identifier: Apache-2.0
// What every BPF loader of lockferry needs once: libbpf's log routed to spdlog, tracefs and
// bpffs mounted when missing, and pinning an object's maps and programs for bpftool.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "lockferry/result.h"

struct bpf_object;
struct bpf_program;

namespace lockferry::capture {

// libbpf's own messages (verifier logs on a load failure too) at spdlog debug level.
void route_libbpf_logs();

// The tracefs directory holding events/; mounts tracefs on /sys/kernel/tracing when nothing is
// mounted. `required_group` (e.g. "syscalls", "filelock") must exist under events/.
Result<std::string> ensure_tracefs(const std::string& required_group = "syscalls");

// Maps and programs of one BPF object pinned under one directory, for `bpftool ... pinned`.
// One live lockferry per directory (a flock()ed file under /run/lockferry says so); pins left by
// a crashed run are replaced. Everything is unpinned by unpin() or the destructor.
class PinSet {
 public:
  using NameFn = std::function<std::string(const bpf_program*)>;

  PinSet() = default;
  PinSet(const PinSet&) = delete;
  PinSet& operator=(const PinSet&) = delete;
  ~PinSet() { unpin(); }

  // Pins every named map (not .rodata/.bss) and every loaded program, named by `prog_name`.
  Result<void> pin(const std::string& dir, bpf_object* obj, const NameFn& prog_name);
  void unpin();
  const std::string& dir() const { return dir_; }
  std::size_t size() const { return pinned_.size(); }

 private:
  std::string dir_;
  std::vector<std::string> pinned_;
  int lock_fd_ = -1;
  std::string lock_path_;
};

}  // namespace lockferry::capture
