// SPDX-License-Identifier: Apache-2.0
// The last capture mode: no kernel events at all, a rescan of every watched directory every
// `interval`. Nothing else on the machine pays; a record reaches the store up to one interval
// late. `mode = auto` ends here when neither BPF nor fanotify nor inotify can run.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "capture/capture.h"

namespace lockferry::capture {

inline constexpr std::chrono::milliseconds kPollInterval{1000};

Result<std::unique_ptr<Capture>> start_poll(boost::asio::io_context& io, const Options& options,
                                            Capture::ResyncHandler on_resync,
                                            const std::string& fallback_note = {},
                                            std::chrono::milliseconds interval = kPollInterval);

}  // namespace lockferry::capture
