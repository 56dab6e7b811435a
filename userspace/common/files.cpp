// SPDX-License-Identifier: Apache-2.0
// Atomic file replacement (temp + fsync + rename + dir fsync) and bounded, symlink-safe reads.
#include "common/files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "common/text.h"

namespace lockferry::files {
Error io_error(int err, const std::string& what) {
  std::string message = fmt::format("{} ({}): {}", what, errno_name(err), strerror_text(err));
  if (err == EACCES || err == EPERM) message += "; check the owner and mode of the directory";
  if (err == ENOSPC || err == EDQUOT) message += "; the file system or quota is full";
  if (err == EROFS) message += "; the file system is mounted read-only";
  return Error{std::move(message), err};
}

namespace {

Result<void> check_component(std::string_view name, const std::string& dir) {
  if (name.empty() || name == "." || name == ".." || name.size() > NAME_MAX ||
      name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return make_error("cannot write into {}: '{}' is not a plain file name", dir,
                      std::string(name.substr(0, 64)));
  }
  return {};
}

std::string random_hex() {
  std::uint8_t bytes[8] = {};
  // getrandom cannot block for 8 bytes once the pool is initialised; fall back to the clock
  // mixed with the pid if it fails, since uniqueness (not secrecy) is all that is needed.
  if (getrandom(bytes, sizeof(bytes), GRND_NONBLOCK) != static_cast<ssize_t>(sizeof(bytes))) {
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    std::uint64_t v = static_cast<std::uint64_t>(ts.tv_nsec) ^
                      (static_cast<std::uint64_t>(ts.tv_sec) << 30) ^
                      (static_cast<std::uint64_t>(getpid()) << 48);
    std::memcpy(bytes, &v, sizeof(bytes));
  }
  return text::to_hex(std::span<const std::uint8_t>(bytes));
}

std::string temp_name_for(std::string_view name) {
  // Keep the final name's start for debugging but stay well under NAME_MAX.
  return fmt::format(".{}{}{}.{}", name.substr(0, 120), kTempMarker, getpid(), random_hex());
}

}  // namespace

std::string errno_name(int err) {
  const char* name = strerrorname_np(err);
  return name ? std::string(name) : fmt::format("errno {}", err);
}

bool is_atomic_write_temp_name(std::string_view name) {
  return !name.empty() && name.front() == '.' && name.find(kTempMarker) != std::string_view::npos;
}

namespace {

// Writes `content` into a new temp file in `dirfd` with the exact mode and owner, synced (when
// `sync`) and closed, and returns its name; on failure nothing is left behind.
Result<std::string> write_temp_file(int dirfd, const std::string& dir, const std::string& target,
                                    std::string_view name, std::string_view content, mode_t mode,
                                    std::optional<Owner> owner, bool sync = true) {
  const std::string temp = temp_name_for(name);
  const std::string temp_path = dir + "/" + temp;
  Fd fd(::openat(dirfd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 mode & 07777));
  if (fd.get() < 0) {
    return io_error(errno,
                    fmt::format("cannot write {}: creating temp file {}", target, temp_path));
  }

  // From here on every failure removes the temp file: a full disk should not fill up further
  // with leftovers (readers skip them anyway).
  auto fail = [&](int err, std::string_view step) -> Error {
    ::unlinkat(dirfd, temp.c_str(), 0);
    return io_error(err, fmt::format("cannot write {}: {} temp file {}", target, step, temp_path));
  };

  // openat's mode had the umask applied; statd's sm-notify needs the exact mode (and owner).
  if (::fchmod(fd.get(), mode & 07777) != 0) return fail(errno, "setting the mode of");
  if (owner && ::fchown(fd.get(), owner->uid, owner->gid) != 0) {
    return fail(errno, "changing the owner of");
  }
  if (int err = write_all(fd.get(), content); err != 0) return fail(err, "writing");
  if (sync && ::fsync(fd.get()) != 0) return fail(errno, "syncing");
  // On NFS, close() is where a failed write-back shows up.
  if (fd.close() != 0) return fail(errno, "closing");
  return temp;
}

}  // namespace

int write_all(int fd, std::string_view content) {
  for (std::size_t done = 0; done < content.size();) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

namespace {

// Opens `dir` for the path-based functions below, which then work relative to it.
Result<Fd> open_dir_for(const std::string& dir, const std::string& what) {
  Fd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dirfd.get() < 0) return io_error(errno, fmt::format("{}: opening directory {}", what, dir));
  return dirfd;
}

}  // namespace

Result<void> write_file_atomically(const std::string& dir, std::string_view name,
                                   std::string_view content, mode_t mode,
                                   std::optional<Owner> owner, bool fsync_dir, bool fsync_file) {
  if (auto ok = check_component(name, dir); !ok) return ok.error();
  auto dirfd = open_dir_for(dir, fmt::format("cannot write {}/{}", dir, name));
  if (!dirfd) return dirfd.error();
  return write_file_atomically_at(dirfd->get(), dir, name, content, mode, owner, fsync_dir,
                                  fsync_file);
}

Result<void> write_file_atomically_at(int dirfd, const std::string& dir, std::string_view name,
                                      std::string_view content, mode_t mode,
                                      std::optional<Owner> owner, bool fsync_dir, bool fsync_file) {
  if (auto ok = check_component(name, dir); !ok) return ok.error();
  const std::string target = dir + "/" + std::string(name);
  auto temp = write_temp_file(dirfd, dir, target, name, content, mode, owner, fsync_file);
  if (!temp) return temp.error();

  if (::renameat(dirfd, temp->c_str(), dirfd, std::string(name).c_str()) != 0) {
    int err = errno;
    ::unlinkat(dirfd, temp->c_str(), 0);
    return io_error(err,
                    fmt::format("cannot write {}: renaming {}/{} over it", target, dir, *temp));
  }
  if (fsync_dir && ::fsync(dirfd) != 0) {
    // The new content is in place and readable; only its durability across a crash is unknown.
    return io_error(errno, fmt::format("wrote {} but could not sync directory {}", target, dir));
  }
  return {};
}

Result<void> write_files_atomically(const std::string& dir, const std::vector<FileContent>& batch,
                                    mode_t mode) {
  for (const auto& f : batch) {
    if (auto ok = check_component(f.name, dir); !ok) return ok.error();
  }
  if (batch.empty()) return {};
  auto dirfd = open_dir_for(dir, fmt::format("cannot write {} files into {}", batch.size(), dir));
  if (!dirfd) return dirfd.error();
  return write_files_atomically_at(dirfd->get(), dir, batch, mode);
}

Result<void> write_files_atomically_at(int dirfd, const std::string& dir,
                                       const std::vector<FileContent>& batch, mode_t mode) {
  for (const auto& f : batch) {
    if (auto ok = check_component(f.name, dir); !ok) return ok.error();
  }
  if (batch.empty()) return {};
  std::vector<std::string> temps;
  temps.reserve(batch.size());
  // Every temp file not yet renamed is removed on any failure: readers skip them, but a full
  // disk should not fill up further with leftovers.
  auto fail = [&](std::size_t renamed, Error error) -> Error {
    for (std::size_t i = renamed; i < temps.size(); ++i) ::unlinkat(dirfd, temps[i].c_str(), 0);
    return error;
  };
  // One file: fsync it, as write_file_atomically does. More: one syncfs for all of them. An
  // fsync per file costs a device cache flush each even when one journal commit already holds
  // them all (ext4), so N files cost N flushes; syncfs costs one (measured here: 4 files 7 ms
  // instead of 18, 32 files 31 ms instead of 75, p50, on a loaded virtio disk). The price:
  // syncfs also writes back other processes' dirty data on the same file system, so keep the
  // store on a file system of its own where that matters. Since Linux 5.8 syncfs reports
  // write-back errors.
  const bool one = batch.size() == 1;
  for (const auto& f : batch) {
    const std::string target = dir + "/" + f.name;
    auto temp = write_temp_file(dirfd, dir, target, f.name, f.content, mode, std::nullopt,
                                /*sync=*/one);
    if (!temp) return fail(0, temp.error());
    temps.push_back(std::move(*temp));
  }
  if (!one && ::syncfs(dirfd) != 0) {
    const int err = errno;
    return fail(0, io_error(err, fmt::format("cannot write {} files into {}: syncing the file "
                                             "system",
                                             batch.size(), dir)));
  }
  // Every new content is durable under its temp name; a crash from here on leaves each name
  // with its whole old or whole new content.
  for (std::size_t i = 0; i < temps.size(); ++i) {
    if (::renameat(dirfd, temps[i].c_str(), dirfd, batch[i].name.c_str()) != 0) {
      const int err = errno;
      return fail(i,
                  io_error(err, fmt::format("cannot write {}/{}: renaming {}/{} over it "
                                            "({} of the {} files before it were written)",
                                            dir, batch[i].name, dir, temps[i], i, batch.size())));
    }
  }
  if (::fsync(dirfd) != 0) {
    return io_error(errno, fmt::format("wrote {} files into {} but could not sync the directory",
                                       batch.size(), dir));
  }
  return {};
}

Result<bool> create_file_exclusively(const std::string& dir, std::string_view name,
                                     std::string_view content, mode_t mode) {
  if (auto ok = check_component(name, dir); !ok) return ok.error();
  auto dirfd = open_dir_for(dir, fmt::format("cannot create {}/{}", dir, name));
  if (!dirfd) return dirfd.error();
  return create_file_exclusively_at(dirfd->get(), dir, name, content, mode);
}

Result<bool> create_file_exclusively_at(int dirfd, const std::string& dir, std::string_view name,
                                        std::string_view content, mode_t mode) {
  if (auto ok = check_component(name, dir); !ok) return ok.error();
  const std::string target = dir + "/" + std::string(name);
  auto temp = write_temp_file(dirfd, dir, target, name, content, mode, std::nullopt);
  if (!temp) return temp.error();

  bool created = true;
  if (::linkat(dirfd, temp->c_str(), dirfd, std::string(name).c_str(), 0) != 0) {
    int err = errno;
    // NFS may report a failure for a link that did happen (a retransmitted LINK finds the name
    // taken by its own first attempt); the temp file's link count tells the truth.
    struct stat st {};
    bool linked =
        ::fstatat(dirfd, temp->c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_nlink == 2;
    if (!linked) {
      ::unlinkat(dirfd, temp->c_str(), 0);
      if (err != EEXIST) {
        return io_error(err,
                        fmt::format("cannot create {}: linking {}/{} to it", target, dir, *temp));
      }
      created = false;
    }
  }
  ::unlinkat(dirfd, temp->c_str(), 0);
  if (::fsync(dirfd) != 0) {
    return io_error(errno, fmt::format("cannot create {}: syncing directory {}", target, dir));
  }
  return created;
}

Result<std::string> read_file_bounded(const std::string& path, std::size_t max_bytes) {
  return read_file_bounded_at(AT_FDCWD, path, path, max_bytes);
}

Result<std::string> read_file_bounded_at(int dirfd, const std::string& name,
                                         const std::string& shown, std::size_t max_bytes) {
  const std::string& path = shown;
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
  Fd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ELOOP)
      return Error{fmt::format("refusing to read {}: it is a symbolic link", path), err};
    return io_error(err, fmt::format("cannot read {}", path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error(errno, fmt::format("cannot stat {}", path));
  if (!S_ISREG(st.st_mode)) {
    return make_error("refusing to read {}: not a regular file (mode {:o})", path,
                      static_cast<unsigned>(st.st_mode & S_IFMT));
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    return make_error("refusing to read {}: {} bytes is larger than the {} bytes allowed", path,
                      st.st_size, max_bytes);
  }
  // Read up to one byte past the limit: the file may grow between fstat and read. The buffer
  // starts at the size fstat saw, not at max_bytes: limits are generous (256 MiB for a lock
  // table, 1 MiB per monitor document), and allocating and zeroing them for every read made a
  // reconcile over thousands of records touch gigabytes.
  std::string out(std::min<std::size_t>(static_cast<std::size_t>(st.st_size), max_bytes) + 1, '\0');
  std::size_t got = 0;
  while (true) {
    if (got == out.size()) {
      if (out.size() > max_bytes) break;  // one byte past the limit: refused below
      out.resize(std::min<std::size_t>(max_bytes + 1, out.size() * 2));
    }
    ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(errno, fmt::format("cannot read {}", path));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > max_bytes) {
    return make_error("refusing to read {}: it grew larger than the {} bytes allowed", path,
                      max_bytes);
  }
  out.resize(got);
  return out;
}

Result<void> fsync_directory(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return io_error(errno, fmt::format("cannot open directory {}", path));
  if (::fsync(fd.get()) != 0) return io_error(errno, fmt::format("cannot sync directory {}", path));
  return {};
}

Result<void> ensure_directory(const std::string& path, mode_t mode) {
  if (path.empty()) return make_error("cannot create a directory with an empty path");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return make_error("{} exists but is not a directory", path);
  }
  if (errno != ENOENT) return io_error(errno, fmt::format("cannot stat {}", path));

  std::string parent = path;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  auto slash = parent.rfind('/');
  parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : parent.substr(0, slash));
  if (parent != path) {
    if (auto ok = ensure_directory(parent, mode); !ok) return ok;
  }
  if (::mkdir(path.c_str(), mode) != 0) {
    // Another process may have created it meanwhile; that is success.
    if (errno == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return {};
    return io_error(errno, fmt::format("cannot create directory {}", path));
  }
  return fsync_directory(parent);
}

}  // namespace lockferry::files
