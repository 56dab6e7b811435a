// SPDX-License-Identifier: Apache-2.0
// The eBPF capture mode: loads bpf/statmon_watch.bpf.c through the BPF loader (bpf_loader.h),
// fills the watched-directory maps, and turns its ring-buffer events into FileChanges.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "capture/bpf_probes.h"  // probe_bpf(): whether this mode can run at all
#include "capture/capture.h"

namespace lockferry::capture {

Result<std::unique_ptr<Capture>> start_bpf(boost::asio::io_context& io, const Options& options,
                                           Capture::ChangeHandler on_change,
                                           Capture::ResyncHandler on_resync);

}  // namespace lockferry::capture
