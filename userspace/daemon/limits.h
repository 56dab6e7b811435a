// SPDX-License-Identifier: Apache-2.0
// Raising lockferryd's open-file limit at start, so a burst of control, metrics or store
// connections does not leave it without a descriptor to read a monitor record with.
#pragma once

#include <sys/resource.h>

#include "lockferry/result.h"

namespace lockferry::daemon {

struct FileLimit {
  rlim_t before = 0;  // soft limit at start
  rlim_t soft = 0;    // soft limit now
  rlim_t hard = 0;
};

// Sets the RLIMIT_NOFILE soft limit to the hard limit (the unit's LimitNOFILE=): 1024, the usual
// default, is what 1,000 idle control connections exhausted. The hard limit is not touched.
Result<FileLimit> raise_open_file_limit();

}  // namespace lockferry::daemon
