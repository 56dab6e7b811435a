// SPDX-License-Identifier: Apache-2.0
// Translation of raw file events into FileChanges; see changes.h.
#include "capture/changes.h"

#include "statmon/file_names.h"

namespace lockferry::capture {

namespace {

FileChange make_change(const RawFileEvent& e, FileChange::Kind kind, const std::string& dir,
                       const std::string& name) {
  FileChange c;
  c.kind = kind;
  c.dir = dir;
  c.name = name;
  c.pid = e.pid;
  c.comm = e.comm;
  c.ts_ns = e.ts_ns;
  return c;
}

}  // namespace

std::vector<FileChange> translate(const RawFileEvent& e) {
  std::vector<FileChange> out;
  switch (e.kind) {
    case RawFileEvent::Kind::opened:
      // Content is incomplete until the writer closes the file.
      break;
    case RawFileEvent::Kind::closed_after_write: {
      if (e.dir.empty() || statmon::is_hidden_name(e.name)) break;
      // "<name>.new" is old statd's temp file, unless statd created it with O_EXCL: then it is
      // the record of a client whose name happens to end in ".new".
      if (statmon::is_old_statd_temp_name(e.name) && !e.exclusive_create) break;
      out.push_back(make_change(e, FileChange::Kind::written, e.dir, e.name));
      break;
    }
    case RawFileEvent::Kind::renamed: {
      const bool same = e.dir == e.old_dir && e.name == e.old_name;
      if (same) break;
      if (!e.old_dir.empty() && !e.old_name.empty()) {
        if (e.exchange) {
          if (!statmon::is_hidden_name(e.old_name))
            out.push_back(make_change(e, FileChange::Kind::written, e.old_dir, e.old_name));
        } else if (!statmon::is_statd_temp_name(e.old_name)) {
          out.push_back(make_change(e, FileChange::Kind::removed, e.old_dir, e.old_name));
        }
      }
      // Renaming a temp file into place is how statd updates a record: the target is written.
      if (!e.dir.empty() && !statmon::is_hidden_name(e.name))
        out.push_back(make_change(e, FileChange::Kind::written, e.dir, e.name));
      break;
    }
    case RawFileEvent::Kind::deleted:
      if (!e.dir.empty() && !statmon::is_statd_temp_name(e.name))
        out.push_back(make_change(e, FileChange::Kind::removed, e.dir, e.name));
      break;
  }
  return out;
}

}  // namespace lockferry::capture
