// SPDX-License-Identifier: Apache-2.0
// Capture::start: probe the modes best first (bpf, fanotify, inotify), log the choice and why.
#include "capture/capture.h"

#include <spdlog/spdlog.h>

#include "capture/bpf_capture.h"
#include "capture/notify_capture.h"

namespace lockferry::capture {

Result<std::unique_ptr<Capture>> Capture::start(boost::asio::io_context& io, const Options& options,
                                                ChangeHandler on_change, ResyncHandler on_resync) {
  Result<std::unique_ptr<Capture>> result = make_error("no capture mode tried");
  switch (options.mode) {
    case Mode::bpf:
      result = start_bpf(io, options, on_change, on_resync);
      break;
    case Mode::fanotify:
      result = start_fanotify(io, options, on_change, on_resync, " (forced by configuration)");
      break;
    case Mode::inotify:
      result = start_inotify(io, options, on_change, on_resync, " (forced by configuration)");
      break;
    case Mode::automatic: {
      result = start_bpf(io, options, on_change, on_resync);
      if (result) break;
      const std::string bpf_error = result.error().message;
      spdlog::warn("capture: BPF mode unavailable: {}; falling back to fanotify", bpf_error);
      result = start_fanotify(io, options, on_change, on_resync, "; bpf unavailable: " + bpf_error);
      if (result) break;
      const std::string fan_error = result.error().message;
      spdlog::warn("capture: fanotify mode unavailable: {}; falling back to inotify", fan_error);
      result =
          start_inotify(io, options, on_change, on_resync,
                        "; bpf unavailable: " + bpf_error + "; fanotify unavailable: " + fan_error);
      break;
    }
  }
  if (!result)
    return make_error("cannot watch the monitor directories in {} mode: {}",
                      to_string(options.mode), result.error().message);
  spdlog::info("capture: mode {} ({})", to_string((*result)->mode()), (*result)->mode_reason());
  return result;
}

}  // namespace lockferry::capture
