// SPDX-License-Identifier: Apache-2.0
// Pinning one BPF object's maps and programs for bpftool (part of the BPF loader, see
// bpf_loader.h), with bpffs mounted when missing and one live lockferry per pin directory.
#pragma once

#include <string>
#include <vector>

#include "lockferry/result.h"

struct bpf_object;

namespace lockferry::capture {

// Maps and programs of one BPF object pinned under one directory, for `bpftool ... pinned`.
// One live lockferry per directory (a flock()ed file under /run/lockferry says so); pins left by
// a crashed run are replaced. Everything is unpinned by unpin() or the destructor.
class PinSet {
 public:
  PinSet() = default;
  PinSet(const PinSet&) = delete;
  PinSet& operator=(const PinSet&) = delete;
  ~PinSet() { unpin(); }

  // Pins every named map (not .rodata/.bss) and every loaded program, under its short name
  // (program_short_name: the tracepoint's name, what bpftool users look for).
  Result<void> pin(const std::string& dir, bpf_object* obj);
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
