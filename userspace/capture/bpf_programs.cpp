// SPDX-License-Identifier: Apache-2.0
// The program table and the choice it drives; see bpf_programs.h.
#include "capture/bpf_programs.h"

#include <bpf/libbpf.h>

#include <algorithm>

#include "capture/bpf_probes.h"

namespace lockferry::capture {
namespace {

// clang-format off
constexpr ProgramRow kPrograms[] = {
    // statmon_watch (monitor records), two hook sets (capture.h: Mode::fentry, Mode::tracepoint).
    // fentry: function-level hooks, paid only by operations on directory entries and the last
    // close of a file opened for writing. A hard link into the directory is only lockferry's own
    // replay (seen by its reconcile anyway), so vfs_link is optional.
    {"statmon_watch", "fentry__enter_fput", "fentry", Need::required},
    {"statmon_watch", "fexit__exit_vfs_unlink", "fentry", Need::required},
    {"statmon_watch", "fentry__enter_vfs_rename", "fentry", Need::required},
    {"statmon_watch", "fexit__exit_vfs_rename", "fentry", Need::required},
    {"statmon_watch", "fexit__exit_vfs_link", "fentry", Need::optional},
    // kprobe: the same hooks and bodies through kprobe/kretprobe, where fentry is refused.
    {"statmon_watch", "kprobe__enter_fput", "kprobe", Need::required},
    {"statmon_watch", "kprobe__enter_vfs_unlink", "kprobe", Need::required},
    {"statmon_watch", "kretprobe__exit_vfs_unlink", "kprobe", Need::required},
    {"statmon_watch", "kprobe__enter_vfs_rename", "kprobe", Need::required},
    {"statmon_watch", "kretprobe__exit_vfs_rename", "kprobe", Need::required},
    {"statmon_watch", "kprobe__enter_vfs_link", "kprobe", Need::optional},
    {"statmon_watch", "kretprobe__exit_vfs_link", "kprobe", Need::optional},
    // tracepoint: the syscall tracepoints. These syscalls exist on every architecture; open(2),
    // creat(2), rename(2), renameat(2) and unlink(2) do not (arm64 has only the *at forms), and
    // their programs stay unloaded where the tracepoint is missing.
    {"statmon_watch", "tracepoint__syscalls__sys_enter_openat", "tracepoint", Need::required},
    {"statmon_watch", "tracepoint__syscalls__sys_exit_openat", "tracepoint", Need::required},
    {"statmon_watch", "tracepoint__syscalls__sys_enter_close", "tracepoint", Need::required},
    {"statmon_watch", "tracepoint__syscalls__sys_exit_close", "tracepoint", Need::required},
    {"statmon_watch", "tracepoint__syscalls__sys_enter_unlinkat", "tracepoint", Need::required},
    {"statmon_watch", "tracepoint__syscalls__sys_exit_renameat2", "tracepoint", Need::required},
    {"statmon_watch", "*", "tracepoint", Need::optional},

    // lock_watch (lock grants): exactly one variant of the lock hooks (lock_capture.h: LockHook).
    // kprobe: kernel lockd's own functions, where lockd is the only manager (lock_hook_plan.h):
    // its LOCK, UNLOCK and a blocked lock's grant are required; without nlm_unlock_files (a
    // static function, inlined by some builds) the releases of a client reboot or FREE_ALL are
    // seen by the next reconcile only.
    {"lock_watch", "kprobe__enter_nlmsvc_lock", "kprobe", Need::required},
    {"lock_watch", "kretprobe__exit_nlmsvc_lock", "kprobe", Need::required},
    {"lock_watch", "kprobe__enter_nlmsvc_unlock", "kprobe", Need::required},
    {"lock_watch", "kretprobe__exit_nlmsvc_unlock", "kprobe", Need::required},
    {"lock_watch", "kprobe__enter_nlm_async_call", "kprobe", Need::required},
    {"lock_watch", "kprobe__enter_nlm_unlock_files", "kprobe", Need::optional},
    // uprobe: userspace managers through uprobes on their C library's fcntl and close, attached
    // per manager process (capture/manager_uprobes.h), so the rest of the machine runs nothing.
    // Kernel lockd's kprobes are optional here: lock_capture keeps them when lockd is configured
    // and loaded (and refuses the set when it needs them and they cannot load), else drops them.
    {"lock_watch", "uprobe__enter_manager_fcntl", "uprobe", Need::required},
    {"lock_watch", "uretprobe__exit_manager_fcntl", "uprobe", Need::required},
    {"lock_watch", "uprobe__enter_manager_close", "uprobe", Need::required},
    {"lock_watch", "kprobe__enter_nlmsvc_lock", "uprobe", Need::optional},
    {"lock_watch", "kretprobe__exit_nlmsvc_lock", "uprobe", Need::optional},
    {"lock_watch", "kprobe__enter_nlmsvc_unlock", "uprobe", Need::optional},
    {"lock_watch", "kretprobe__exit_nlmsvc_unlock", "uprobe", Need::optional},
    {"lock_watch", "kprobe__enter_nlm_async_call", "uprobe", Need::optional},
    {"lock_watch", "kprobe__enter_nlm_unlock_files", "uprobe", Need::optional},
    // tp_btf needs BTF but no tracefs; the classic tracepoints are the fallback where the kernel
    // refuses tp_btf.
    {"lock_watch", "tp_btf__posix_lock_inode", "tp_btf", Need::required},
    {"lock_watch", "tp_btf__locks_remove_posix", "tp_btf", Need::required},
    {"lock_watch", "tracepoint__filelock__posix_lock_inode", "tracepoint", Need::required},
    // Without it a release on close is seen by the next reconcile only.
    {"lock_watch", "tracepoint__filelock__locks_remove_posix", "tracepoint", Need::optional},
    // Manager tracking on exec/rename, with the posix_lock_inode hooks and the uprobe set (whose
    // uprobes are attached when userspace hears of a new manager); without them the /proc rescan
    // alone keeps the manager map current. Kernel lockd, a kernel thread, never execs or renames
    // itself: the kprobe set needs neither.
    {"lock_watch", "tracepoint__sched__sched_process_exec", "tp_btf|tracepoint|uprobe", Need::optional},
    {"lock_watch", "tracepoint__task__task_rename", "tp_btf|tracepoint|uprobe", Need::optional},
    // NFS-Ganesha's NLM clients by name (uprobes on its NLM handlers, attached by
    // capture/ganesha_nlm.h when libganesha_nfsd.so is found); without them Ganesha's locks
    // carry no client name.
    {"lock_watch", "uprobe__ganesha_nlm_lock", "tp_btf|tracepoint|uprobe", Need::optional},
    {"lock_watch", "uprobe__ganesha_nlm_unlock", "tp_btf|tracepoint|uprobe", Need::optional},
    {"lock_watch", "uretprobe__ganesha_nlm_return", "tp_btf|tracepoint|uprobe", Need::optional},
};
// clang-format on

// How a hook is probed, by the prefix of its program's ELF section.
struct HookProbe {
  std::string_view section_prefix;
  Result<void> (*probe)(std::string_view target, const std::string& tracefs);
};

constexpr HookProbe kHookProbes[] = {
    {"tracepoint/", [](std::string_view target,
                       const std::string& tracefs) { return probe_tracepoint(tracefs, target); }},
    {"tp_btf/", [](std::string_view target, const std::string&) { return probe_tp_btf(target); }},
    {"fentry/", [](std::string_view target,
                   const std::string&) { return probe_function_hook(target, /*exit=*/false); }},
    {"fexit/", [](std::string_view target,
                  const std::string&) { return probe_function_hook(target, /*exit=*/true); }},
    {"kprobe/", [](std::string_view target,
                   const std::string&) { return probe_kprobe(target, /*retprobe=*/false); }},
    {"kretprobe/", [](std::string_view target,
                      const std::string&) { return probe_kprobe(target, /*retprobe=*/true); }},
    {"uprobe", [](std::string_view, const std::string&) { return probe_uprobes(); }},
    {"uretprobe", [](std::string_view, const std::string&) { return probe_uprobes(); }},
};

Result<void> probe_hook(const bpf_program* prog, const std::string& tracefs) {
  const std::string_view section = bpf_program__section_name(prog);
  for (const auto& hook : kHookProbes)
    if (section.starts_with(hook.section_prefix))
      return hook.probe(section.substr(hook.section_prefix.size()), tracefs);
  return make_error("no probe for the hook of section {} (add one to kHookProbes)", section);
}

// Whether a row's variant list ("tp_btf|tracepoint") names `variant`.
bool lists_variant(std::string_view list, std::string_view variant) {
  while (!list.empty()) {
    const auto bar = list.find('|');
    if (list.substr(0, bar) == variant) return true;
    if (bar == std::string_view::npos) break;
    list.remove_prefix(bar + 1);
  }
  return false;
}

bool has_variant(std::string_view object, std::string_view variant) {
  return std::any_of(std::begin(kPrograms), std::end(kPrograms), [&](const ProgramRow& row) {
    return row.object == object && lists_variant(row.variant, variant);
  });
}

}  // namespace

std::span<const ProgramRow> program_table() { return kPrograms; }

const ProgramRow* program_row(std::string_view object, std::string_view program,
                              std::string_view variant) {
  const ProgramRow* own = nullptr;
  const ProgramRow* any = nullptr;
  for (const auto& row : kPrograms) {
    if (row.object != object) continue;
    if (row.program == program) {
      if (lists_variant(row.variant, variant)) return &row;
      if (!own) own = &row;
    }
    if (row.program == "*") any = &row;
  }
  return own ? own : any;
}

std::string program_short_name(const bpf_program* prog) {
  const std::string_view name = bpf_program__name(prog);
  const auto pos = name.rfind("__");
  return std::string(pos == std::string_view::npos ? name : name.substr(pos + 2));
}

Result<std::vector<ProgramChoice>> choose_programs(bpf_object* obj, std::string_view object,
                                                   std::string_view variant,
                                                   const std::string& tracefs) {
  if (!variant.empty() && !has_variant(object, variant))
    return make_error("the {} BPF object has no {} variant", object, variant);
  std::vector<ProgramChoice> choices;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    const std::string_view name = bpf_program__name(prog);
    const ProgramRow* row = program_row(object, name, variant);
    if (!row) return make_error("program {} of {} is not in the program table", name, object);
    ProgramChoice choice{program_short_name(prog), true, false, {}};
    if (!row->variant.empty() && !lists_variant(row->variant, variant)) {
      choice.load = false;
      choice.reason = fmt::format("it belongs to the {} variant", row->variant);
    } else if (auto hook = probe_hook(prog, tracefs); !hook) {
      if (row->need == Need::required) return hook.error();
      choice.load = false;
      choice.hook_missing = true;
      choice.reason = hook.error().message;
    } else {
      choice.reason = fmt::format("{} is present", bpf_program__section_name(prog));
    }
    bpf_program__set_autoload(prog, choice.load);
    choices.push_back(std::move(choice));
  }
  return choices;
}

}  // namespace lockferry::capture
