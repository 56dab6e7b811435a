// SPDX-License-Identifier: Apache-2.0
// The open-file limit; see limits.h.
#include "daemon/limits.h"

#include <cerrno>

namespace lockferry::daemon {

Result<FileLimit> raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return make_errno_error(errno, "getrlimit(RLIMIT_NOFILE)");
  FileLimit result{limit.rlim_cur, limit.rlim_cur, limit.rlim_max};
  if (limit.rlim_cur == limit.rlim_max) return result;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
    return make_errno_error(errno, "setrlimit(RLIMIT_NOFILE) to {}", limit.rlim_max);
  result.soft = limit.rlim_max;
  return result;
}

}  // namespace lockferry::daemon
