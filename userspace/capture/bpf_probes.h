// SPDX-License-Identifier: Apache-2.0
// Kernel feature probes shared by every BPF loader of lockferry (what libbpf-tools keeps in
// trace_helpers.c): tracefs and its tracepoints, tp_btf, fentry, kprobes, uprobes, and the basics
// the programs need. The program table (bpf_programs.h) runs them to choose which programs load.
#pragma once

#include <string>
#include <string_view>

#include "lockferry/result.h"

namespace lockferry::capture {

// The tracefs directory holding events/; mounts tracefs on /sys/kernel/tracing when nothing is
// mounted. `required_group` (e.g. "syscalls", "filelock") must exist under events/.
Result<std::string> ensure_tracefs(const std::string& required_group = "syscalls");

// Whether tracepoint `group_and_name` ("syscalls/sys_enter_openat") exists under `tracefs`
// ("" when tracefs is not available).
Result<void> probe_tracepoint(const std::string& tracefs, std::string_view group_and_name);

// Whether the kernel takes a tp_btf program for tracepoint `name` (libbpf-tools' probe_tp_btf):
// a two-instruction program loaded against the tracepoint's BTF id.
Result<void> probe_tp_btf(std::string_view name);

// Whether the kernel can attach BPF programs to uprobes: the uprobe PMU (CONFIG_UPROBE_EVENTS)
// and kprobe-type programs, which uprobe programs are.
Result<void> probe_uprobes();

// Whether the kernel loads AND attaches an fentry (or, with `exit`, fexit) program on kernel
// function `function`: a two-instruction program, attached and detached at once. Both steps are
// tried because kernels refuse either one (EPERM at load on locked-down kernels, ENOTSUPP at
// attach for a function ftrace cannot patch).
Result<void> probe_function_hook(std::string_view function, bool exit);

// Whether the kernel attaches a kprobe (or, with `retprobe`, a kretprobe) BPF program to kernel
// function `function`: the kprobe PMU (CONFIG_KPROBE_EVENTS), a two-instruction kprobe program,
// and a perf event on the function with the program set on it, closed at once (as libbpf attaches
// kprobes). Fails for a function kprobes may not probe (notrace, blacklisted, inlined away).
Result<void> probe_kprobe(std::string_view function, bool retprobe);

// What a uprobe plus a uretprobe (no-op BPF programs, attached in this process only) on the C
// library's fcntl add to one call, in ns: the median over `rounds` of (time with the probes -
// time without) / `calls`, for fcntl(F_GETFD). The uprobe lock hook set pays this on every lock
// call of a userspace manager: cheap on bare metal (a breakpoint, a single step and a return
// trampoline), but each trap may exit to the hypervisor in a virtual machine.
Result<double> measure_fcntl_uprobe_ns(int calls = 2000, int rounds = 5);

// Whether this process can run the BPF capture at all (root/CAP_BPF, BTF, ring buffer; with
// `syscall_tracepoints` also tracefs with the syscall tracepoints and bpf_loop, which only the
// tracepoint hook set needs): ok, or an error saying what is missing. Mounts tracefs if needed.
// The program type probed is the tracepoint's, else with `kprobes` the kprobe's, else fentry's.
Result<void> probe_bpf(bool syscall_tracepoints, bool kprobes = false);

}  // namespace lockferry::capture
