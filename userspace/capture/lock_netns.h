// SPDX-License-Identifier: Apache-2.0
// Which lock events belong to this node when several NFS servers share one kernel, one per
// network namespace (kernel lockd is one thread for all of them, so its name says nothing): the
// kernel side stamps each event with its network namespace (lf_lock_event.netns), and a node
// keeps those of the namespace lockferryd runs in.
#pragma once

#include <cstdint>

namespace lockferry::capture {

class LockNetnsFilter {
 public:
  // own: lockferryd's network namespace; 0 = unknown, keep everything.
  explicit LockNetnsFilter(std::uint32_t own = 0) : own_(own) {}
  // An event the kernel could not place (netns 0: a kernel thread other than lockd, a kernel
  // without lockd's BTF) is kept: a foreign lock recorded beats a lock of ours lost.
  bool keeps(std::uint32_t event_netns) const {
    return own_ == 0 || event_netns == 0 || event_netns == own_;
  }
  std::uint32_t own() const { return own_; }

 private:
  std::uint32_t own_;
};

}  // namespace lockferry::capture
