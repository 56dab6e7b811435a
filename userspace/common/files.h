// SPDX-License-Identifier: Apache-2.0
// Writing a file so readers see the old or the new content, never a mix, and reading a file
// whose size we do not trust. Used for statd's monitor directory and for the dir:// store.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockferry/result.h"

namespace lockferry::files {

struct Owner {
  uid_t uid = 0;
  gid_t gid = 0;
};

// Prefix of every temp file write_file_atomically creates, after the leading '.'. Temp files
// start with '.', so statd's nsm_load_dir and the dir:// store both skip them; a crash between
// write and rename leaves one behind, which is harmless (see is_atomic_write_temp_name).
inline constexpr std::string_view kTempMarker = ".lockferry-tmp.";

// Whether `name` is a temp file write_file_atomically creates (for cleanup and for listing code);
// statd's own temp files are statmon::is_statd_temp_name.
bool is_atomic_write_temp_name(std::string_view name);

// Owns a file descriptor and closes it on scope exit; close() closes now and returns its result,
// for the paths where it matters (on NFS, close() is where a failed write shows up).
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      close();
      fd_ = other.release();
    }
    return *this;
  }
  ~Fd() { close(); }
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  int close() {
    const int rc = fd_ >= 0 ? ::close(fd_) : 0;
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Writes all of `content` to `fd`, retrying short writes and EINTR: 0, or the errno that stopped
// it.
int write_all(int fd, std::string_view content);

// Atomically replace <dir>/<name> with `content`: write a temp file in `dir` (unique per
// process and call), set `mode` exactly (umask does not apply) and `owner` if given, fsync it,
// rename() it over `name`, and fsync `dir` when `fsync_dir` (so the rename survives a crash).
// `fsync_file` = false skips the fsync of the content: for a batch of files made durable at once
// afterwards (syncfs + fsync of `dir`), when a crash before that may leave a name empty.
// Concurrent writers in other processes or on other NFS clients each land a whole file; the
// last rename wins. On any error nothing new is visible under `name` and the temp file is
// removed; the error names the path, the step, and the errno (e.g. ENOSPC, EROFS, EACCES).
// `name` must be a single path component; symlinks at `dir` are followed, at `name` replaced.
Result<void> write_file_atomically(const std::string& dir, std::string_view name,
                                   std::string_view content, mode_t mode = 0644,
                                   std::optional<Owner> owner = std::nullopt, bool fsync_dir = true,
                                   bool fsync_file = true);

// The same in the directory open as `dirfd` (`dir` names it in messages only): nothing is
// resolved by path, so a directory whose name others can change (see trusted_dirs.h) is written
// where it was opened, never where its name points now.
Result<void> write_file_atomically_at(int dirfd, const std::string& dir, std::string_view name,
                                      std::string_view content, mode_t mode = 0644,
                                      std::optional<Owner> owner = std::nullopt,
                                      bool fsync_dir = true, bool fsync_file = true);

struct FileContent {
  std::string name;  // a single path component
  std::string content;
};

// write_file_atomically for several files of one directory, made durable together (group
// commit): every temp file is written, then all are synced at once (syncfs of the file system
// holding `dir`; a single file is fsynced), then each is renamed over its name, then `dir` is
// fsynced once. A crash at any point leaves every name with its whole old or whole new content.
// Returns only once all of it is durable. On an error, the names renamed before it hold their
// new content (whole) and the rest their old; no temp file is left; the error names the file,
// the step and the errno. A name given twice ends with its last content.
Result<void> write_files_atomically(const std::string& dir, const std::vector<FileContent>& batch,
                                    mode_t mode = 0644);
Result<void> write_files_atomically_at(int dirfd, const std::string& dir,
                                       const std::vector<FileContent>& batch, mode_t mode = 0644);

// Create <dir>/<name> with `content` only if no such name exists, atomically across processes
// and NFS clients: the content is written to a temp file first and then link()ed to `name`,
// so the name never appears half-written and exactly one of several racing creators wins
// (link() is atomic on NFS where O_EXCL historically was not). Returns true when this call
// created it, false when `name` already existed; fsyncs `dir`.
Result<bool> create_file_exclusively(const std::string& dir, std::string_view name,
                                     std::string_view content, mode_t mode = 0644);
Result<bool> create_file_exclusively_at(int dirfd, const std::string& dir, std::string_view name,
                                        std::string_view content, mode_t mode = 0644);

// The whole content of `path`, refusing symlinks (O_NOFOLLOW), anything that is not a regular
// file (a FIFO does not block the caller), and files larger than `max_bytes`.
Result<std::string> read_file_bounded(const std::string& path, std::size_t max_bytes);
// The same for `name` (a single component, or AT_FDCWD and any path) relative to `dirfd`;
// `shown` names the file in messages. The error's code is the errno (ENOENT for a missing file).
Result<std::string> read_file_bounded_at(int dirfd, const std::string& name,
                                         const std::string& shown, std::size_t max_bytes);

// mkdir -p with `mode` (less the umask) for each directory created; fsyncs the parent of each new
// directory so it survives a crash. Fails if a component exists and is not a directory.
Result<void> ensure_directory(const std::string& path, mode_t mode = 0755);

// fsync a directory, so that entries created, renamed or removed in it are durable.
Result<void> fsync_directory(const std::string& path);

// "ENOSPC"-style name of an errno value (for messages operators can grep), or "errno N".
std::string errno_name(int err);
// An I/O error: "<what> (ENAME): <text>" plus a hint for what an operator can fix (owner and
// mode, a full or read-only file system); code = err.
Error io_error(int err, const std::string& what);

}  // namespace lockferry::files
