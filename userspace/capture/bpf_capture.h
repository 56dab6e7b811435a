// SPDX-License-Identifier: Apache-2.0
// The eBPF capture modes: loads one hook set of bpf/statmon_watch.bpf.c (fentry or kprobe: kernel
// functions; tracepoint: syscall tracepoints) through the BPF loader (bpf_loader.h), fills the
// watched-directory maps, and turns its ring-buffer events into FileChanges.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <span>
#include <string>

#include "capture/bpf_probes.h"  // probe_bpf(): whether this mode can run at all
#include "capture/capture.h"

namespace lockferry::capture {

// Loads the first of `hook_sets` (Mode::fentry, kprobe and/or tracepoint, best first) that loads
// and attaches on this kernel; the error names why each failed. `note` is appended to
// mode_reason().
Result<std::unique_ptr<Capture>> start_bpf(boost::asio::io_context& io, const Options& options,
                                           std::span<const Mode> hook_sets,
                                           Capture::ChangeHandler on_change,
                                           Capture::ResyncHandler on_resync,
                                           const std::string& note = {});

}  // namespace lockferry::capture
