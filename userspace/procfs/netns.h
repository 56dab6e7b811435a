// SPDX-License-Identifier: Apache-2.0
// Which network namespace a process lives in: the inode number /proc/<pid>/ns/net links to
// ("net:[4026531840]"), the identity the kernel side stamps on lock events (lf_lock_event.netns).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lockferry/result.h"

namespace lockferry::procfs {

// The network namespace of `who` ("self" or a pid) under `proc_root`.
Result<std::uint32_t> read_netns(const std::string& proc_root, std::string_view who = "self");

}  // namespace lockferry::procfs
