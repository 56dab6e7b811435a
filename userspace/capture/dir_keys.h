// SPDX-License-Identifier: Apache-2.0
// How the kernel side recognises a watched directory: its (dev, ino) in the kernel's device
// encoding, and the {ancestor, relative path} keys that path strings resolve through.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lockferry/result.h"

namespace lockferry::capture {

struct DirIdentity {
  std::uint64_t dev = 0;  // kernel dev_t (MKDEV: major << 20 | minor), as in inode->i_sb->s_dev
  std::uint64_t ino = 0;
  bool operator==(const DirIdentity&) const = default;
};

// stat() of `path`, converted to the kernel's encoding; fails if it is not a directory.
Result<DirIdentity> dir_identity(const std::string& path);

// "/a//b/./c/" -> "/a/b/c" (lexical only: ".." is kept, symlinks are not resolved).
std::string normalize_path(std::string_view path);

struct PathKey {
  DirIdentity base;
  std::string rel;  // relative path from base to the watched directory, never empty
};

// For each proper ancestor A of `dir` (lexically, for `dir` as given and for its realpath):
// {A, path from A to dir}. Ancestors that cannot be stat()ed are skipped.
Result<std::vector<PathKey>> path_keys(const std::string& dir);

}  // namespace lockferry::capture
