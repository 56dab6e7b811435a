// SPDX-License-Identifier: Apache-2.0
// Taking and releasing byte-range locks in tests and benchmarks, the way a lock manager does:
// F_SETLK/F_SETLKW for POSIX locks, F_OFD_SETLK/F_OFD_SETLKW for OFD locks.
#pragma once

#include <fcntl.h>

namespace lockferry::test {

// Locks (or, with F_UNLCK, releases) [start, start + len) of `fd`; len 0 is "to end of file".
inline bool set_lock(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl {};  // l_pid stays 0, as OFD locks require
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return ::fcntl(fd, cmd, &fl) == 0;
}

}  // namespace lockferry::test
