// SPDX-License-Identifier: Apache-2.0
// Directory identities and path keys for the kernel-side filter; see dir_keys.h.
#include "capture/dir_keys.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <climits>
#include <cstdlib>
#include <memory>

#include "lockferry/events.h"

namespace lockferry::capture {

namespace {

std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view c = path.substr(i, j - i);
    if (!c.empty() && c != ".") out.emplace_back(c);
    i = j + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, std::size_t from, std::size_t to) {
  std::string out;
  for (std::size_t i = from; i < to; ++i) {
    if (!out.empty()) out += '/';
    out += parts[i];
  }
  return out;
}

}  // namespace

Result<DirIdentity> dir_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return make_errno_error(errno, "cannot stat watched directory {}", path);
  if (!S_ISDIR(st.st_mode)) return make_error("watched directory {} is not a directory", path);
  // Userspace dev_t packs major/minor differently from the kernel's internal dev_t, which is
  // what the BPF programs read from the superblock.
  DirIdentity id;
  id.dev = (static_cast<std::uint64_t>(major(st.st_dev)) << 20) | minor(st.st_dev);
  id.ino = st.st_ino;
  return id;
}

std::string normalize_path(std::string_view path) {
  std::string out = join(components(path), 0, components(path).size());
  if (!path.empty() && path.front() == '/') return "/" + out;
  return out.empty() ? "." : out;
}

Result<std::vector<PathKey>> path_keys(const std::string& dir) {
  std::vector<std::string> spellings{normalize_path(dir)};
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(dir.c_str(), nullptr), std::free);
  if (!real) return make_errno_error(errno, "cannot resolve watched directory {}", dir);
  if (spellings.front() != real.get()) spellings.emplace_back(real.get());

  std::vector<PathKey> keys;
  for (const auto& spelling : spellings) {
    if (spelling.empty() || spelling.front() != '/')
      return make_error("watched directory {} must be an absolute path", dir);
    const auto parts = components(spelling);
    for (std::size_t k = 0; k < parts.size(); ++k) {
      PathKey key;
      key.rel = join(parts, k, parts.size());
      if (key.rel.size() >= LF_REL_LEN) continue;  // too deep for the kernel key; see events.h
      auto base = dir_identity("/" + join(parts, 0, k));
      if (!base) continue;
      key.base = *base;
      keys.push_back(std::move(key));
    }
  }
  return keys;
}

}  // namespace lockferry::capture
