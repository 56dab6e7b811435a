// SPDX-License-Identifier: Apache-2.0
// See shared_lockd.h.
#include "capture/shared_lockd.h"

#include "capture/lock_capture.h"
#include "procfs/netns.h"

namespace lockferry::capture {

std::optional<OtherNfsServer> find_other_nfs_server(const std::string& proc_root,
                                                    std::uint32_t own_netns) {
  if (own_netns == 0) return std::nullopt;
  for (const auto& p : find_manager_processes(proc_root, {"rpc.mountd"}, 0)) {
    // A process that exits meanwhile has no namespace to read: it serves nothing any more.
    auto netns = procfs::read_netns(proc_root, std::to_string(p.pid));
    if (netns && *netns != own_netns) return OtherNfsServer{p.pid, *netns};
  }
  return std::nullopt;
}

}  // namespace lockferry::capture
