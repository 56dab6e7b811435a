// SPDX-License-Identifier: Apache-2.0
// The words and limits of the capture's settings (modes, lock hooks, ring buffer sizes, lock
// manager names), apart from the loaders: the settings are read by both binaries, and the CLI
// must not link libbpf. Declared in capture.h and lock_capture.h.
#include <unistd.h>

#include <algorithm>

#include "capture/capture.h"
#include "capture/lock_capture.h"
#include "lockferry/events.h"

namespace lockferry::capture {

const char* to_string(Mode mode) {
  switch (mode) {
    case Mode::automatic:
      return "auto";
    case Mode::bpf:
      return "bpf";
    case Mode::fentry:
      return "fentry";
    case Mode::kprobe:
      return "kprobe";
    case Mode::tracepoint:
      return "tracepoint";
    case Mode::fanotify:
      return "fanotify";
    case Mode::inotify:
      return "inotify";
    case Mode::poll:
      return "poll";
  }
  return "unknown";
}

Result<Mode> mode_from_string(std::string_view text) {
  for (Mode m : {Mode::automatic, Mode::bpf, Mode::fentry, Mode::kprobe, Mode::tracepoint,
                 Mode::fanotify, Mode::inotify, Mode::poll})
    if (text == to_string(m)) return m;
  return make_error(
      "unknown capture mode '{}' (use auto, bpf, fentry, kprobe, tracepoint, fanotify, inotify or "
      "poll)",
      text);
}

const char* to_string(LockHook hook) {
  switch (hook) {
    case LockHook::automatic:
      return "auto";
    case LockHook::tp_btf:
      return "tp_btf";
    case LockHook::tracepoint:
      return "tracepoint";
    case LockHook::kprobe:
      return "kprobe";
    case LockHook::uprobe:
      return "uprobe";
  }
  return "unknown";
}

Result<LockHook> lock_hook_from_string(std::string_view text) {
  for (LockHook h : {LockHook::automatic, LockHook::uprobe, LockHook::kprobe, LockHook::tp_btf,
                     LockHook::tracepoint})
    if (text == to_string(h)) return h;
  return make_error("unknown lock hook '{}' (use auto, uprobe, kprobe, tp_btf or tracepoint)",
                    text);
}

Result<void> check_manager_names(const std::vector<std::string>& names) {
  if (names.size() > 16) return make_error("at most 16 lock manager names, not {}", names.size());
  for (const auto& n : names) {
    if (n.empty()) return make_error("a lock manager name is empty");
    if (n.size() >= LF_COMM_LEN)
      return make_error(
          "lock manager name '{}' is {} bytes; the kernel keeps {} bytes of a process "
          "name (comm): use '{}'",
          n, n.size(), LF_COMM_LEN - 1, n.substr(0, LF_COMM_LEN - 1));
    if (n.find('\0') != std::string::npos || n.find('/') != std::string::npos)
      return make_error("lock manager name '{}' cannot be a process name", n);
  }
  return {};
}

Result<std::uint32_t> lock_ring_bytes(std::uint32_t kb) {
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t bytes = std::max<std::uint64_t>(std::uint64_t{kb} * 1024, page);
  if ((bytes & (bytes - 1)) != 0 || bytes > (1u << 30))
    return make_error("lock ring buffer size {} KiB is not a power of two up to 1 GiB", kb);
  return static_cast<std::uint32_t>(bytes);
}

}  // namespace lockferry::capture
