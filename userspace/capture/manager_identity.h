// SPDX-License-Identifier: Apache-2.0
// Whether a process named like a lock manager really is one. A process name (comm) is chosen by
// the process itself (prctl, exec of any file so named): any local user can call a process
// "ganesha.nfsd" or "lockd". Only these count: kernel lockd is a kernel thread, which no user
// process can become; NFS-Ganesha runs as root from its installed binary.
#pragma once

#include <string>
#include <vector>

#include "procfs/process.h"

namespace lockferry::capture {

// Where NFS-Ganesha's distributions install it (merged /usr and not, and a local build).
inline const std::vector<std::string> kDefaultManagerBinaries{
    "/usr/bin/ganesha.nfsd", "/usr/sbin/ganesha.nfsd", "/usr/local/bin/ganesha.nfsd"};

// Empty when `p` is a lock manager: a kernel thread, or a process whose real and effective uid
// are 0 and whose executable is one of `binaries` (the same path, " (deleted)" after a package
// upgrade included, or the same file). Otherwise why it is not, e.g. "runs as uid 65534, not
// root", for the log.
std::string why_not_a_manager(const procfs::ProcessIdentity& p,
                              const std::vector<std::string>& binaries);

}  // namespace lockferry::capture
