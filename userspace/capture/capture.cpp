// SPDX-License-Identifier: Apache-2.0
// Capture::start: the named mode, or for `auto` the cheapest complete one this kernel allows,
// tried in order (fentry, fanotify, kprobe, inotify, poll); logs the choice and why.
#include "capture/capture.h"

#include <spdlog/spdlog.h>

#include <array>

#include "capture/bpf_capture.h"
#include "capture/notify_capture.h"
#include "capture/poll_capture.h"

namespace lockferry::capture {
namespace {

constexpr std::array kFentryOnly{Mode::fentry};
constexpr std::array kKprobeOnly{Mode::kprobe};
constexpr std::array kTracepointOnly{Mode::tracepoint};
constexpr std::array kBestBpf{Mode::fentry, Mode::kprobe, Mode::tracepoint};

// Why `auto` passes over the syscall tracepoints even where they load (docs/performance.md).
constexpr const char* kNoTracepoints =
    "syscall tracepoints skipped: with them every syscall of every process pays the kernel's "
    "tracing slow path (openat+close 1.35x, fanotify ~1.01x); mode = \"tracepoint\" or \"bpf\" "
    "selects them";

using Starter = Result<std::unique_ptr<Capture>> (*)(boost::asio::io_context&, const Options&,
                                                     Capture::ChangeHandler, Capture::ResyncHandler,
                                                     const std::string&);

// `auto`: each mode in turn, cheapest complete first; every failure is logged and named in the
// reason of the one that runs. kprobe comes after fanotify: measured side by side in the Debian
// 6.1 guest (docs/performance.md §1b) it costs as much on opens and closes (its kprobe on __fput
// runs at every last close on the machine) and more on unlinks and renames (kretprobes, 1.09x vs
// 1.00x), for the same guarantee; it is ahead of inotify, which cost as much in the same run.
Result<std::unique_ptr<Capture>> start_cheapest(boost::asio::io_context& io, const Options& options,
                                                const Capture::ChangeHandler& on_change,
                                                const Capture::ResyncHandler& on_resync) {
  struct Candidate {
    const char* name;
    Starter start;
  };
  const Candidate candidates[] = {
      {"fentry",
       [](auto& io, const auto& o, auto c, auto r, const std::string& note) {
         return start_bpf(io, o, kFentryOnly, std::move(c), std::move(r), note);
       }},
      {"fanotify",
       [](auto& io, const auto& o, auto c, auto r, const std::string& note) {
         return start_fanotify(io, o, std::move(c), std::move(r), note);
       }},
      {"kprobe",
       [](auto& io, const auto& o, auto c, auto r, const std::string& note) {
         return start_bpf(io, o, kKprobeOnly, std::move(c), std::move(r), note);
       }},
      {"inotify",
       [](auto& io, const auto& o, auto c, auto r, const std::string& note) {
         return start_inotify(io, o, std::move(c), std::move(r), note);
       }},
      {"poll", [](auto& io, const auto& o, auto, auto r,
                  const std::string& note) { return start_poll(io, o, std::move(r), note); }},
  };
  std::string note = "; chosen by auto, the cheapest complete mode";
  Result<std::unique_ptr<Capture>> result = make_error("no capture mode tried");
  for (const auto& c : candidates) {
    result = c.start(io, options, on_change, on_resync, note);
    if (result) return result;
    spdlog::warn("capture: {} mode unavailable: {}; trying the next", c.name,
                 result.error().message);
    note += fmt::format("; {} unavailable: {}", c.name, result.error().message);
    if (c.start == candidates[0].start) {
      spdlog::info("capture: {}", kNoTracepoints);
      note += std::string("; ") + kNoTracepoints;
    }
  }
  return result;
}

}  // namespace

Result<std::unique_ptr<Capture>> Capture::start(boost::asio::io_context& io, const Options& options,
                                                ChangeHandler on_change, ResyncHandler on_resync) {
  const std::string forced = " (forced by configuration)";
  Result<std::unique_ptr<Capture>> result = make_error("no capture mode tried");
  switch (options.mode) {
    case Mode::bpf:
      result = start_bpf(io, options, kBestBpf, on_change, on_resync, forced);
      break;
    case Mode::fentry:
      result = start_bpf(io, options, kFentryOnly, on_change, on_resync, forced);
      break;
    case Mode::kprobe:
      result = start_bpf(io, options, kKprobeOnly, on_change, on_resync, forced);
      break;
    case Mode::tracepoint:
      result = start_bpf(io, options, kTracepointOnly, on_change, on_resync, forced);
      break;
    case Mode::fanotify:
      result = start_fanotify(io, options, on_change, on_resync, forced);
      break;
    case Mode::inotify:
      result = start_inotify(io, options, on_change, on_resync, forced);
      break;
    case Mode::poll:
      result = start_poll(io, options, on_resync, forced);
      break;
    case Mode::automatic:
      result = start_cheapest(io, options, on_change, on_resync);
      break;
  }
  if (!result)
    return make_error("cannot watch the monitor directories in {} mode: {}",
                      to_string(options.mode), result.error().message);
  spdlog::info("capture: mode {} ({})", to_string((*result)->mode()), (*result)->mode_reason());
  return result;
}

}  // namespace lockferry::capture
