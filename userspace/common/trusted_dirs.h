// SPDX-License-Identifier: Apache-2.0
// Directories that root writes into while other users can write near them (statd's monitor
// directory, the dir:// store, a sqlite:// database's directory): opened without following any
// symbolic link, checked the way sshd's StrictModes checks a user's files, and every path beneath
// them resolved the same way, so that a planted link or a renamed directory cannot send a write
// anywhere else.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/files.h"
#include "lockferry/result.h"

namespace lockferry::files {

// Who, besides root and this process's own user, may own the parents of a trusted directory.
enum class ParentOwners {
  // Root and this process's user only: the dir:// store root, a sqlite:// database's directory.
  trusted_only,
  // Also the directory's own owner when that is not root. statd's user owns sm/ and, on RHEL
  // (/var/lib/nfs/statd, rpcuser) and Debian (/var/lib/nfs, statd), its parent as well. That
  // user can rename or replace sm/ at any moment, but only with a directory that it owns or may
  // already move (never with a link: no component is followed), and the caller writes into the
  // directory it holds open, so the worst it can do is have its own records written into
  // another directory of its own, which it could do anyway.
  or_its_owner,
};

// Opens the directory at absolute `path` for reading (O_RDONLY|O_DIRECTORY) and checks it and
// every parent. The rule:
//  1. No component is a symbolic link: each is opened with O_NOFOLLOW|O_DIRECTORY relative to
//     the parent already held open (walking from "/"), so what is checked is what is used.
//  2. Every parent is owned by root, by this process's user or (or_its_owner) by the owner of
//     the directory itself; and it is not writable by group or others unless it has the sticky
//     bit (like /tmp: others may then add names but not rename or remove ours, and what they
//     add is theirs, which rule 2 or 3 refuses).
//  3. The directory itself is owned by root or this process's user (or_its_owner: by anyone,
//     the owner being who the caller writes for) and not writable by group or others; a sticky
//     bit does not help here, since names in it are exactly what is written and read.
// A refusal names the path, its owner and mode, and what to change. Every later operation must
// be relative to the returned descriptor: the path is never resolved again.
Result<Fd> open_trusted_directory(const std::string& path, ParentOwners parents);

// open_trusted_directory with ParentOwners::trusted_only, creating the missing part of `path`
// (mode `mode` less the umask) beneath its deepest existing parent, which is checked first:
// nothing is created through a link or inside a directory another user could change.
Result<Fd> create_trusted_directory(const std::string& path, mode_t mode = 0750);

// Checks one directory already opened (rule 3 with trusted_only): its owner is root or this
// process's user and it is not writable by group or others. `path` names it in the error.
Result<void> check_trusted_directory(const struct stat& st, const std::string& path);

// The same for a file opened without following links (a database SQLite reopens by name): a
// regular file, owned by root or this process's user, not writable by group or others.
Result<void> check_trusted_file(const struct stat& st, const std::string& path);

// Opens `relative` beneath the directory `dirfd` without following any symbolic link and
// without leaving it ("..", absolute paths, links and /proc magic links are refused): openat2
// with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS where the kernel has it (5.6;
// called by syscall number, Debian 12's glibc has no wrapper), else one component at a time
// with O_NOFOLLOW. `flags` and `mode` are openat's for the last component; O_NOFOLLOW and
// O_CLOEXEC are always added. Returns the descriptor, or -1 with errno set (ELOOP for a link,
// EXDEV for an escape) like openat.
int open_beneath(int dirfd, std::string_view relative, int flags, mode_t mode = 0);

// Opens the directory `relative` beneath `dirfd` with open_beneath, creating each missing
// component with `mode` (less the umask) when `create` (fsyncing its parent so it survives a
// crash), and checks each component with check_trusted_directory. `dir` names `dirfd` in
// messages. A missing directory without `create` is an error with code ENOENT.
Result<Fd> open_directory_beneath(int dirfd, const std::string& dir, std::string_view relative,
                                  bool create, mode_t mode = 0750);

}  // namespace lockferry::files
