// SPDX-License-Identifier: Apache-2.0
#include "procfs/netns.h"

#include <sys/stat.h>

#include <cerrno>

namespace lockferry::procfs {

Result<std::uint32_t> read_netns(const std::string& proc_root, std::string_view who) {
  const std::string path = proc_root + "/" + std::string(who) + "/ns/net";
  struct stat st {};
  // stat follows the magic link to the namespace's nsfs inode.
  if (::stat(path.c_str(), &st) != 0)
    return make_errno_error(errno, "cannot stat {} (which network namespace?)", path);
  return static_cast<std::uint32_t>(st.st_ino);
}

}  // namespace lockferry::procfs
