// SPDX-License-Identifier: Apache-2.0
// The fallback capture modes when BPF cannot run: fanotify with FAN_REPORT_DFID_NAME (Linux
// 5.9+, reports the writer's pid), else inotify (any kernel, no pid). `fallback_note` says why
// a better mode was not used; it is appended to mode_reason().
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "capture/capture.h"

namespace lockferry::capture {

Result<std::unique_ptr<Capture>> start_fanotify(boost::asio::io_context& io, const Options& options,
                                                Capture::ChangeHandler on_change,
                                                Capture::ResyncHandler on_resync,
                                                const std::string& fallback_note = {});

Result<std::unique_ptr<Capture>> start_inotify(boost::asio::io_context& io, const Options& options,
                                               Capture::ChangeHandler on_change,
                                               Capture::ResyncHandler on_resync,
                                               const std::string& fallback_note = {});

}  // namespace lockferry::capture
