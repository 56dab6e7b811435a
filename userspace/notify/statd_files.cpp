// SPDX-License-Identifier: Apache-2.0
// statd's `state` file and sm/ -> sm.bak/ bookkeeping; see statd_files.h.
#include "notify/statd_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/trusted_dirs.h"

namespace lockferry::notify {
namespace {

// Opens (creating when `create`) a subdirectory of the state directory, refusing links.
Result<files::Fd> open_subdir(int state_dir_fd, const std::string& state_dir,
                              const std::string& name) {
  files::Fd fd(files::open_beneath(state_dir_fd, name, O_RDONLY | O_DIRECTORY));
  if (fd.get() < 0) return make_errno_error(errno, "cannot open {}/{}", state_dir, name);
  return fd;
}

// sm.bak/ with sm/'s owner and mode, created when missing (statd creates both at start).
Result<files::Fd> open_sm_bak(int state_dir_fd, const std::string& state_dir, int sm_fd) {
  struct stat sm {};
  if (fstat(sm_fd, &sm) != 0) return make_errno_error(errno, "cannot stat {}/sm", state_dir);
  if (mkdirat(state_dir_fd, "sm.bak", sm.st_mode & 07777) == 0) {
    files::Fd created(files::open_beneath(state_dir_fd, "sm.bak", O_RDONLY | O_DIRECTORY));
    if (created.get() < 0 || fchown(created.get(), sm.st_uid, sm.st_gid) != 0 ||
        fchmod(created.get(), sm.st_mode & 07777) != 0)
      return make_errno_error(errno, "cannot give {}/sm.bak the owner and mode of sm/", state_dir);
    return created;
  }
  if (errno != EEXIST) return make_errno_error(errno, "cannot create {}/sm.bak", state_dir);
  return open_subdir(state_dir_fd, state_dir, "sm.bak");
}

bool plain_name(const std::string& name) {
  return !name.empty() && name[0] != '.' && name.find('/') == std::string::npos;
}

}  // namespace

std::int32_t next_nsm_state(std::optional<std::int32_t> on_disk) {
  std::int32_t state = on_disk.value_or(1);
  if (on_disk && (state & 1) == 0) ++state;
  return state + 2;
}

Result<std::int32_t> bump_nsm_state(int state_dir_fd, const std::string& state_dir,
                                    files::Owner owner) {
  std::optional<std::int32_t> on_disk;
  files::Fd fd(files::open_beneath(state_dir_fd, "state", O_RDONLY));
  if (fd.get() < 0 && errno != ENOENT)
    return make_errno_error(errno, "cannot open {}/state", state_dir);
  std::int32_t value = 0;
  if (fd.get() >= 0 && read(fd.get(), &value, sizeof value) == sizeof value) on_disk = value;
  const std::int32_t state = next_nsm_state(on_disk);
  std::string bytes(sizeof state, '\0');
  std::memcpy(bytes.data(), &state, sizeof state);  // host order, as statd writes it
  if (auto written =
          files::write_file_atomically_at(state_dir_fd, state_dir, "state", bytes, 0644, owner);
      !written)
    return written.error();
  return state;
}

void post_kernel_nsm_state(std::int32_t state) {
  files::Fd fd(open("/proc/sys/fs/nfs/nsm_local_state", O_WRONLY | O_CLOEXEC));
  if (fd.get() >= 0) (void)files::write_all(fd.get(), std::to_string(state));
}

Result<std::size_t> retire_clients(int state_dir_fd, const std::string& state_dir,
                                   const std::vector<std::string>& clients) {
  auto sm = open_subdir(state_dir_fd, state_dir, "sm");
  if (!sm) return sm.error();
  auto bak = open_sm_bak(state_dir_fd, state_dir, sm->get());
  if (!bak) return bak.error();
  std::size_t moved = 0;
  for (const auto& client : clients) {
    if (!plain_name(client))
      return make_error("monitor record name '{}' is not a file name", client);
    if (renameat(sm->get(), client.c_str(), bak->get(), client.c_str()) == 0)
      ++moved;
    else if (errno != ENOENT)
      return make_errno_error(errno, "cannot move {}/sm/{} to sm.bak/", state_dir, client);
  }
  // Durable before the first notification: a crash after it must not forget who is pending.
  if (fsync(bak->get()) != 0 || fsync(sm->get()) != 0)
    return make_errno_error(errno, "cannot sync {}/sm.bak", state_dir);
  return moved;
}

Result<void> forget_notified(int sm_bak_fd, const std::string& client) {
  if (!plain_name(client)) return make_error("monitor record name '{}' is not a file name", client);
  if (unlinkat(sm_bak_fd, client.c_str(), 0) != 0 && errno != ENOENT)
    return make_errno_error(errno, "cannot remove sm.bak/{}", client);
  return {};
}

Result<files::Owner> statd_owner(int state_dir_fd, const std::string& state_dir) {
  struct stat st {};
  if (fstatat(state_dir_fd, "sm", &st, AT_SYMLINK_NOFOLLOW) != 0)
    return make_errno_error(errno, "cannot stat {}/sm", state_dir);
  if (!S_ISDIR(st.st_mode)) return make_error("{}/sm is not a directory", state_dir);
  return files::Owner{st.st_uid, st.st_gid};
}

}  // namespace lockferry::notify
