// SPDX-License-Identifier: Apache-2.0
// Does another NFS server share this kernel's lockd? Kernel lockd is one thread for every
// network namespace's NFS server and /proc/locks names neither the namespace nor the client, so
// a node that sees lockd locks it has no event for cannot tell its own (events it dropped) from
// another node's. Lock events of other namespaces say so once they come (LockNetnsFilter); this
// says so from the start, for a lockferryd that restarts while another node's clients hold
// locks and lock nothing new.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace lockferry::capture {

struct OtherNfsServer {
  std::uint32_t pid = 0;    // its rpc.mountd
  std::uint32_t netns = 0;  // its network namespace
};

// An NFS server in a network namespace other than `own_netns`, found by its rpc.mountd (every
// NFSv3 server runs one in its namespace; NFS clients, which also run rpc.statd, do not).
std::optional<OtherNfsServer> find_other_nfs_server(const std::string& proc_root,
                                                    std::uint32_t own_netns);

}  // namespace lockferry::capture
