// SPDX-License-Identifier: Apache-2.0
// The eBPF capture mode: loads bpf/statmon_watch.bpf.c through its skeleton, fills the
// watched-directory maps, pins, and consumes the ring buffer on the io_context.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "capture/capture.h"

namespace lockferry::capture {

// Whether this process can run the BPF mode at all (root/CAP_BPF, BTF, tracefs, syscall
// tracepoints, bpf_loop): ok, or an error saying what is missing. Mounts tracefs if needed.
Result<void> probe_bpf();

Result<std::unique_ptr<Capture>> start_bpf(boost::asio::io_context& io, const Options& options,
                                           Capture::ChangeHandler on_change,
                                           Capture::ResyncHandler on_resync);

}  // namespace lockferry::capture
