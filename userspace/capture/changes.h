// SPDX-License-Identifier: Apache-2.0
// What a low-level file event (BPF ring buffer, fanotify, inotify) means for monitor records:
// one rule set for every capture mode, so all modes report the same FileChanges.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "capture/capture.h"

namespace lockferry::capture {

// One observed operation on a file in a watched directory. `dir`/`old_dir` are configured
// directory paths; empty means "not in a watched directory".
struct RawFileEvent {
  enum class Kind { opened, closed_after_write, renamed, deleted };
  Kind kind = Kind::closed_after_write;
  std::string dir;
  std::string name;     // the file (for renames: the new name)
  std::string old_dir;  // renames: where it came from
  std::string old_name;
  bool exclusive_create = false;  // closed_after_write: opened with O_CREAT|O_EXCL (a new record)
  bool exchange = false;          // renames: RENAME_EXCHANGE, both names now hold new content
  std::uint32_t pid = 0;
  std::string comm;
  std::int64_t ts_ns = 0;
};

// The FileChanges an event implies, in the order they must be applied (removed before written).
std::vector<FileChange> translate(const RawFileEvent& event);

}  // namespace lockferry::capture
