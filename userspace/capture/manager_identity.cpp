// SPDX-License-Identifier: Apache-2.0
// Lock manager identity; see manager_identity.h.
#include "capture/manager_identity.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>

#include "lockferry/result.h"

namespace lockferry::capture {
namespace {

constexpr std::string_view kDeleted = " (deleted)";

}  // namespace

std::string why_not_a_manager(const procfs::ProcessIdentity& p,
                              const std::vector<std::string>& binaries) {
  if (!p.exists) return "it is gone";
  if (p.kernel_thread) return {};
  if (!p.uid || !p.euid) return "its user cannot be read";
  if (*p.uid != 0 || *p.euid != 0)
    return fmt::format("runs as uid {} (effective {}), not root", *p.uid, *p.euid);
  if (p.exe.empty() && !p.exe_file)
    return fmt::format("its executable cannot be read ({})", strerror_text(p.exe_error));
  std::string_view exe = p.exe;
  // The running binary of a manager whose package was upgraded under it.
  if (exe.ends_with(kDeleted)) exe.remove_suffix(kDeleted.size());
  for (const auto& b : binaries) {
    if (exe == b) return {};
    struct stat st {};
    if (p.exe_file && ::stat(b.c_str(), &st) == 0 && st.st_dev == p.exe_file->first &&
        st.st_ino == p.exe_file->second)
      return {};
  }
  return fmt::format("runs {}, which is not one of the lock manager binaries ({})",
                     p.exe.empty() ? std::string("an unreadable executable") : p.exe,
                     binaries.empty() ? std::string("none configured")
                                      : fmt::format("{}", fmt::join(binaries, ", ")));
}

}  // namespace lockferry::capture
