// SPDX-License-Identifier: Apache-2.0
// Capture: tells the daemon which files in the watched monitor directories changed, from the
// eBPF programs (best) or fanotify/inotify (fallback), on the daemon's io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lockferry/result.h"

namespace lockferry::capture {

// How the monitor directories are watched. A running capture's mode() is one of the concrete
// ones (fentry, kprobe, tracepoint, fanotify, inotify, poll); automatic and bpf are choices:
//   automatic: the cheapest complete one this kernel allows: fentry, else fanotify, else kprobe,
//              else inotify, else poll. Never tracepoint: it makes every syscall of every
//              process pay.
//   bpf:       the best BPF hook set: fentry, else kprobe, else tracepoint.
//   fentry:    BPF on kernel functions (fentry/fexit): only directory-entry operations pay.
//   kprobe:    the same functions through kprobe/kretprobe, where the kernel refuses fentry.
//   tracepoint: BPF on the syscall tracepoints (every syscall on the machine pays ~80+ ns).
//   poll:      a rescan every second; nothing else pays, records arrive up to a second late.
enum class Mode { automatic, bpf, fentry, kprobe, tracepoint, fanotify, inotify, poll };
const char* to_string(Mode mode);
Result<Mode> mode_from_string(std::string_view text);

// What happened to one file directly inside a watched directory.
struct FileChange {
  enum class Kind {
    written,  // created/truncated and then closed by its writer, or renamed into place: read it now
    removed,  // unlinked, or renamed away
  };
  Kind kind = Kind::written;
  std::string dir;   // the watched directory, as configured
  std::string name;  // the file name inside it
  std::uint32_t pid = 0;
  std::string comm;        // the writer's process name, when known
  std::int64_t ts_ns = 0;  // CLOCK_MONOTONIC of the event, when known
};

struct Counters {
  std::uint64_t hits = 0;     // BPF: program invocations that passed the cheap filters
  std::uint64_t emits = 0;    // events put on the ring buffer / read from fanotify/inotify
  std::uint64_t drops = 0;    // ring buffer full (or inotify queue overflow)
  std::uint64_t changes = 0;  // FileChange callbacks delivered
};

inline constexpr std::uint32_t kDefaultRingBufferKb = 1024;
inline constexpr std::uint32_t kMinRingBufferKb = 4;
inline constexpr std::uint32_t kMaxRingBufferKb = 256 * 1024;

struct Options {
  std::vector<std::string> dirs;  // absolute paths of the watched monitor directories
  Mode mode = Mode::automatic;    // see Mode
  std::string pin_dir = "/sys/fs/bpf/lockferry";  // empty = do not pin
  // BPF mode: size of the ring buffer carrying events to userspace (a power of two; rounded up to
  // the page size). Overflow is counted and repaired by a rescan; tests shrink it to force that.
  std::uint32_t ring_buffer_kb = kDefaultRingBufferKb;
};

class Capture {
 public:
  using ChangeHandler = std::function<void(const FileChange&)>;
  // Called when events may have been lost (drops, overflow): the owner must rescan `dir`.
  using ResyncHandler = std::function<void(const std::string& dir)>;

  virtual ~Capture() = default;

  // Probes, loads and attaches the best mode available (logging each choice and why), and
  // starts delivering changes on `io`. Fails only when no mode at all can run.
  static Result<std::unique_ptr<Capture>> start(boost::asio::io_context& io, const Options& options,
                                                ChangeHandler on_change, ResyncHandler on_resync);

  virtual Mode mode() const = 0;                // the hook set in use (never automatic or bpf)
  virtual std::string mode_reason() const = 0;  // why this mode (e.g. "bpf: load failed: EPERM")
  virtual Counters counters() const = 0;
  // Replace the watched directories (SIGHUP reload).
  virtual Result<void> set_dirs(const std::vector<std::string>& dirs) = 0;
  // Detach, unpin, and stop delivering; the io_context may then drain.
  virtual void stop() = 0;
};

}  // namespace lockferry::capture
