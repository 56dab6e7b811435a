// SPDX-License-Identifier: Apache-2.0
// Link-free, StrictModes-checked opening of directories root writes into; see trusted_dirs.h.
#include "common/trusted_dirs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <vector>

namespace lockferry::files {
namespace {

// "nobody (uid 65534)", or "uid 1234" for a user without a name.
std::string owner_text(uid_t uid) {
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr)
    return fmt::format("{} (uid {})", found->pw_name, uid);
  return fmt::format("uid {}", uid);
}

bool trusted_owner(uid_t uid) { return uid == 0 || uid == ::geteuid(); }

bool writable_by_others(const struct stat& st) { return (st.st_mode & (S_IWGRP | S_IWOTH)) != 0; }

// The components of a relative path, without empty ones and "."; false for "..".
bool split_components(std::string_view path, std::vector<std::string>& out) {
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part == "..") return false;
    if (!part.empty() && part != ".") out.emplace_back(part);
    start = end + 1;
  }
  return true;
}

// openat of one component that never follows a link; a link gives ELOOP (O_PATH|O_NOFOLLOW
// would open the link itself, and O_DIRECTORY then says ENOTDIR: normalised to ELOOP).
int open_component(int dirfd, const std::string& name, int flags, mode_t mode) {
  const int fd = ::openat(dirfd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0 && errno == ENOTDIR) {
    struct stat st {};
    // A directory now: it was something else a moment ago, i.e. someone is swapping it with a
    // link (seen in ReplayPaths.SwappingTheDirectoryForALinkDuringReplay...).
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        (S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode)))
      errno = ELOOP;
    else
      errno = ENOTDIR;
  }
  return fd;
}

Error open_error(int err, const std::string& path) {
  if (err == ELOOP)
    return Error{fmt::format("refusing {}: it is a symbolic link (or was swapped with one while "
                             "being opened), and links are not followed where root writes (a user "
                             "who can write its directory could point it anywhere); use the real "
                             "path",
                             path),
                 err};
  if (err == ENOTDIR) return Error{fmt::format("{} is not a directory", path), err};
  return io_error(err, fmt::format("cannot open directory {}", path));
}

std::string join(const std::string& dir, std::string_view name) {
  return dir == "/" ? "/" + std::string(name) : dir + "/" + std::string(name);
}

Result<void> check_owner_and_mode(const struct stat& st, const std::string& path) {
  if (!trusted_owner(st.st_uid))
    return make_error(
        "refusing {}: it is owned by {}, who could plant links in it that make "
        "root write elsewhere; make it owned by root (chown root {})",
        path, owner_text(st.st_uid), path);
  if (writable_by_others(st))
    return make_error(
        "refusing {}: its mode {:04o} lets group or others plant links in it that "
        "make root write elsewhere; remove their write permission (chmod go-w {})",
        path, st.st_mode & 07777, path);
  return {};
}

}  // namespace

Result<void> check_trusted_directory(const struct stat& st, const std::string& path) {
  if (!S_ISDIR(st.st_mode)) return make_error("{} is not a directory", path);
  return check_owner_and_mode(st, path);
}

Result<void> check_trusted_file(const struct stat& st, const std::string& path) {
  if (!S_ISREG(st.st_mode)) return make_error("refusing {}: not a regular file", path);
  return check_owner_and_mode(st, path);
}

Result<Fd> open_trusted_directory(const std::string& path, ParentOwners parents) {
  if (path.empty() || path.front() != '/')
    return make_error("directory '{}' must be an absolute path", path);
  std::vector<std::string> parts;
  if (!split_components(path, parts))
    return make_error("refusing {}: '..' is not allowed in the path; use the real path", path);

  struct Seen {
    std::string path;
    struct stat st {};
  };
  std::vector<Seen> seen;
  // Parents are opened O_PATH (no read permission needed, nothing but openat and fstat done
  // with them); the directory itself for reading, since callers list, sync and write in it.
  Fd current(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string current_path = "/";
  for (std::size_t i = 0;; ++i) {
    struct stat st {};
    if (current.get() < 0 || ::fstat(current.get(), &st) != 0)
      return io_error(errno, fmt::format("cannot open or stat {}", current_path));
    seen.push_back({current_path, st});
    if (i == parts.size()) break;
    const bool last = i + 1 == parts.size();
    const std::string next_path = join(current_path, parts[i]);
    Fd next(open_component(current.get(), parts[i], (last ? O_RDONLY : O_PATH) | O_DIRECTORY, 0));
    if (next.get() < 0) return open_error(errno, next_path);
    current = std::move(next);
    current_path = next_path;
  }
  if (parts.empty()) {  // "/" itself: reopen it readable
    current = Fd(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (current.get() < 0) return io_error(errno, "cannot open /");
  }

  const Seen& target = seen.back();
  if (parents == ParentOwners::trusted_only) {
    if (auto ok = check_trusted_directory(target.st, path); !ok) return ok.error();
  } else if (writable_by_others(target.st)) {
    if (auto ok = check_trusted_directory(target.st, path); !ok) return ok.error();
  }
  const uid_t its_owner = target.st.st_uid;
  for (std::size_t i = 0; i + 1 < seen.size(); ++i) {
    const Seen& p = seen[i];
    const bool owner_ok = trusted_owner(p.st.st_uid) ||
                          (parents == ParentOwners::or_its_owner && p.st.st_uid == its_owner);
    if (!owner_ok)
      return make_error(
          "refusing {}: its parent {} is owned by {}, who could replace it with "
          "another directory; make {} owned by root{}",
          path, p.path, owner_text(p.st.st_uid), p.path,
          parents == ParentOwners::or_its_owner
              ? fmt::format(" or by {}'s owner, {}", path, owner_text(its_owner))
              : std::string());
    if (writable_by_others(p.st) && (p.st.st_mode & S_ISVTX) == 0)
      return make_error(
          "refusing {}: its parent {} has mode {:04o}, so group or others could "
          "replace it with another directory; remove their write permission "
          "(chmod go-w {}) or set the sticky bit",
          path, p.path, p.st.st_mode & 07777, p.path);
  }
  return current;
}

Result<Fd> create_trusted_directory(const std::string& path, mode_t mode) {
  auto opened = open_trusted_directory(path, ParentOwners::trusted_only);
  if (opened || opened.error().code != ENOENT) return opened;
  std::vector<std::string> parts;
  split_components(path, parts);  // open_trusted_directory refused ".." already
  // The deepest parent that exists (and passes the check) gets the missing rest created in it.
  for (std::size_t n = parts.size(); n-- > 0;) {
    std::string base = "/";
    for (std::size_t i = 0; i < n; ++i) base = join(base, parts[i]);
    auto parent = open_trusted_directory(base, ParentOwners::trusted_only);
    if (!parent && parent.error().code == ENOENT) continue;
    if (!parent) return parent.error();
    std::string rest;
    for (std::size_t i = n; i < parts.size(); ++i) rest += (rest.empty() ? "" : "/") + parts[i];
    return open_directory_beneath(parent->get(), base, rest, true, mode);
  }
  return opened;
}

int open_beneath(int dirfd, std::string_view relative, int flags, mode_t mode) {
  flags |= O_NOFOLLOW | O_CLOEXEC;
  const std::string rel(relative);
  if (rel.empty() || rel.front() == '/' || rel.find('\0') != std::string::npos) {
    errno = EINVAL;
    return -1;
  }
#ifdef SYS_openat2
  // Unknown to kernels before 5.6 (ENOSYS) and to some seccomp filters (EPERM): then the
  // component walk below, which is as strict, only longer.
  static std::atomic<bool> unavailable{false};
  if (!unavailable.load(std::memory_order_relaxed)) {
    struct open_how how {};
    how.flags = static_cast<std::uint64_t>(flags);
    how.mode = (flags & (O_CREAT | __O_TMPFILE)) != 0 ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const long fd = ::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof(how));
    if (fd >= 0) return static_cast<int>(fd);
    // ENOTDIR: also what a link gives with O_DIRECTORY|O_NOFOLLOW; the walk tells which.
    if (errno != ENOSYS && errno != EPERM && errno != EAGAIN && errno != ENOTDIR) return -1;
    if (errno == ENOSYS || errno == EPERM) unavailable.store(true, std::memory_order_relaxed);
  }
#endif
  std::vector<std::string> parts;
  if (!split_components(rel, parts)) {
    errno = EXDEV;
    return -1;
  }
  if (parts.empty()) parts.emplace_back(".");
  Fd held;
  int current = dirfd;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    Fd next(open_component(current, parts[i], O_PATH | O_DIRECTORY, 0));
    if (next.get() < 0) return -1;
    held = std::move(next);
    current = held.get();
  }
  return open_component(current, parts.back(), flags, mode);
}

Result<Fd> open_directory_beneath(int dirfd, const std::string& dir, std::string_view relative,
                                  bool create, mode_t mode) {
  std::vector<std::string> parts;
  if (!split_components(relative, parts) || parts.empty())
    return make_error("refusing {}/{}: not a plain path beneath it", dir, relative);
  // One component at a time, so that each directory on the way is checked, not only the last:
  // a node directory that others could write would let them swap its subdirectories.
  Fd held;
  int current = dirfd;
  std::string current_shown = dir;
  for (const auto& part : parts) {
    const std::string next_shown = join(current_shown, part);
    Fd next(open_beneath(current, part, O_RDONLY | O_DIRECTORY));
    if (next.get() < 0 && errno == ENOENT && create) {
      if (::mkdirat(current, part.c_str(), mode) != 0 && errno != EEXIST)
        return io_error(errno, fmt::format("cannot create directory {}", next_shown));
      // The new entry must survive a crash with the files that will be written into it.
      if (::fsync(current) != 0)
        return io_error(errno, fmt::format("cannot sync directory {}", current_shown));
      next = Fd(open_beneath(current, part, O_RDONLY | O_DIRECTORY));
    }
    if (next.get() < 0) return open_error(errno, next_shown);
    struct stat st {};
    if (::fstat(next.get(), &st) != 0)
      return io_error(errno, fmt::format("cannot stat {}", next_shown));
    if (auto ok = check_trusted_directory(st, next_shown); !ok) return ok.error();
    held = std::move(next);
    current = held.get();
    current_shown = next_shown;
  }
  return held;
}

}  // namespace lockferry::files
