// SPDX-License-Identifier: Apache-2.0
// The parts of statd's state directory a notifier changes, kept as nfs-utils keeps them
// (support/nsm/file.c) so that sm-notify, rpc.statd or a later run of ours read them alike:
// `state` (the NSM state number) and the move of notified clients from sm/ to sm.bak/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/files.h"
#include "lockferry/result.h"

namespace lockferry::notify {

// The state number after a reboot, given what `state` holds (nullopt: missing or short).
// statd keeps it odd while up: an even number read is made odd first, then 2 is added; a
// missing file starts at 1, so the first bump gives 3.
std::int32_t next_nsm_state(std::optional<std::int32_t> on_disk);

// Reads `state` in the directory `state_dir_fd` (host byte order, 4 bytes), bumps it with
// next_nsm_state, and writes it back atomically (temp file + rename) owned by `owner`, mode 0644.
// `state_dir` names the directory in messages. Returns the new state.
Result<std::int32_t> bump_nsm_state(int state_dir_fd, const std::string& state_dir,
                                    files::Owner owner);

// Tells kernel lockd the new state (/proc/sys/fs/nfs/nsm_local_state), as sm-notify does; a
// kernel without lockd has no such file, which is fine.
void post_kernel_nsm_state(std::int32_t state);

// sm-notify's first step for the given clients: each sm/<client> moves to sm.bak/<client>
// (rename, so an interrupted run leaves every record in one of the two). sm.bak/ is created like
// sm/ (same owner and mode) when missing. A client already in sm.bak/ (pending from an earlier
// run) or in neither stays as it is. Returns how many records moved.
Result<std::size_t> retire_clients(int state_dir_fd, const std::string& state_dir,
                                   const std::vector<std::string>& clients);

// A client acknowledged: its record leaves sm.bak/ (the directory open as `sm_bak_fd`), so
// nobody notifies it again. A record already gone is fine.
Result<void> forget_notified(int sm_bak_fd, const std::string& client);

// The owner of sm/ (statd's user), whom sm-notify runs as and whose files it writes.
Result<files::Owner> statd_owner(int state_dir_fd, const std::string& state_dir);

}  // namespace lockferry::notify
