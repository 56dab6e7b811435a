// SPDX-License-Identifier: Apache-2.0
// Which programs of lockferry's BPF objects load: ONE table for every object and variant (hook
// set), and, per program, the probe of its hook, chosen from its ELF section
// (tracepoint/<group>/<name>, tp_btf/<name>, fentry/<function>, fexit/<function>,
// kprobe/<function>, kretprobe/<function>). The loader
// (bpf_loader.h) applies the choice and logs it.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lockferry/result.h"

struct bpf_object;
struct bpf_program;

namespace lockferry::capture {

// Whether an object can run without a program whose hook is missing on this kernel.
enum class Need { required, optional };

struct ProgramRow {
  std::string_view object;   // BPF object: "statmon_watch", "lock_watch"
  std::string_view program;  // program (function) name; "*" = the object's programs not listed
  std::string_view variant;  // "" = loaded in every variant; else only when one it lists
                             // ("tp_btf|tracepoint") is chosen
  Need need;
};

// The table (bpf_programs.cpp): every program of every object, with its variant and need.
std::span<const ProgramRow> program_table();

// The row of `program` of `object`: its own (the one for `variant` when it has several), else
// the object's "*" row; null if neither.
const ProgramRow* program_row(std::string_view object, std::string_view program,
                              std::string_view variant = {});

// What was decided for one program, and why.
struct ProgramChoice {
  std::string program;  // program_short_name
  bool load = false;
  bool hook_missing = false;  // not loaded because this kernel lacks its hook (else: variant)
  std::string reason;
};

// Decides for every program of `obj` (the BPF object named `object`) whether it loads in
// `variant` ("" for objects without variants), from the table and the probe of its hook, and turns
// autoload off for the others. Fails when a required program's hook is missing: that variant
// cannot run on this kernel.
Result<std::vector<ProgramChoice>> choose_programs(bpf_object* obj, std::string_view object,
                                                   std::string_view variant,
                                                   const std::string& tracefs);

// Pin and log name of a program: its hook's name, the part after the last "__"
// ("tracepoint__syscalls__sys_enter_openat" -> "sys_enter_openat"), as bpftool shows it pinned.
std::string program_short_name(const bpf_program* prog);

}  // namespace lockferry::capture
