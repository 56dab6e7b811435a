// SPDX-License-Identifier: Apache-2.0
// Kernel feature probes; see bpf_probes.h.
#include "capture/bpf_probes.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/perf_event.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <optional>
#include <vector>

#include "capture/bpf_loader.h"
#include "common/files.h"

namespace lockferry::capture {
namespace {

// r0 = 0; exit: the program every hook probe loads.
constexpr std::array<bpf_insn, 2> kReturnZero{{
    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
    {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
}};

// The number in sysfs file `path` after `prefix` ("6", or "config:0" with prefix "config:").
std::optional<int> read_pmu_number(const char* path, std::string_view prefix = {}) {
  std::ifstream in(path);
  std::string text;
  if (!std::getline(in, text) || !text.starts_with(prefix)) return std::nullopt;
  try {
    return std::stoi(text.substr(prefix.size()));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

Result<std::string> ensure_tracefs(const std::string& required_group) {
  for (const char* root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    if (::access((std::string(root) + "/events/" + required_group).c_str(), F_OK) == 0)
      return std::string(root);
  }
  if (::access("/sys/kernel/tracing/events", F_OK) != 0) {
    if (::mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0)
      return make_errno_error(errno,
                              "tracefs is not mounted and mounting it on /sys/kernel/tracing "
                              "failed (mount -t tracefs tracefs /sys/kernel/tracing)");
    spdlog::info("capture: mounted tracefs on /sys/kernel/tracing");
  }
  if (::access(("/sys/kernel/tracing/events/" + required_group).c_str(), F_OK) != 0) {
    if (required_group == "syscalls")
      return make_error("kernel has no syscall tracepoints (CONFIG_FTRACE_SYSCALLS is off)");
    return make_error("kernel has no {} tracepoints (/sys/kernel/tracing/events/{} is missing)",
                      required_group, required_group);
  }
  return std::string("/sys/kernel/tracing");
}

Result<void> probe_tracepoint(const std::string& tracefs, std::string_view group_and_name) {
  if (tracefs.empty())
    return make_error("tracepoint {} is missing (tracefs is not available)", group_and_name);
  const std::string path = tracefs + "/events/" + std::string(group_and_name);
  if (::access(path.c_str(), F_OK) != 0)
    return make_error("tracepoint {} is missing in {}", group_and_name, tracefs);
  return {};
}

Result<void> probe_tp_btf(std::string_view name) {
  const std::string tp(name);
  const int btf_id = libbpf_find_vmlinux_btf_id(tp.c_str(), BPF_TRACE_RAW_TP);
  if (btf_id < 0)
    return make_errno_error(-btf_id, "the kernel's BTF has no tracepoint btf_trace_{}", name);
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP,
              .attach_btf_id = static_cast<__u32>(btf_id));
  const int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, nullptr, "GPL", kReturnZero.data(),
                               kReturnZero.size(), &opts);
  if (fd < 0) return make_errno_error(errno, "the kernel refuses tp_btf programs on {}", name);
  ::close(fd);
  return {};
}

Result<void> probe_uprobes() {
  if (::access("/sys/bus/event_source/devices/uprobe/type", R_OK) != 0)
    return make_errno_error(errno,
                            "the kernel has no uprobe PMU "
                            "(/sys/bus/event_source/devices/uprobe/type; CONFIG_UPROBE_EVENTS)");
  route_libbpf_logs();
  if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_KPROBE, nullptr) != 1)
    return make_error("the kernel refuses kprobe-type BPF programs, which uprobes are");
  return {};
}

Result<void> probe_function_hook(std::string_view function, bool exit) {
  const std::string fn(function);
  const char* kind = exit ? "fexit" : "fentry";
  const auto type = exit ? BPF_TRACE_FEXIT : BPF_TRACE_FENTRY;
  const int btf_id = libbpf_find_vmlinux_btf_id(fn.c_str(), type);
  if (btf_id < 0)
    return make_errno_error(-btf_id, "the kernel's BTF has no function {} for {}", function, kind);
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = type,
              .attach_btf_id = static_cast<__u32>(btf_id));
  const int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, nullptr, "GPL", kReturnZero.data(),
                               kReturnZero.size(), &opts);
  if (fd < 0)
    return make_errno_error(errno, "the kernel refuses {} programs on {}", kind, function);
  const int link = bpf_link_create(fd, 0, type, nullptr);
  const int err = errno;
  ::close(fd);
  if (link < 0) return make_errno_error(err, "the kernel cannot attach {} to {}", kind, function);
  ::close(link);
  return {};
}

Result<void> probe_kprobe(std::string_view function, bool retprobe) {
  const char* kind = retprobe ? "kretprobe" : "kprobe";
  auto type = read_pmu_number("/sys/bus/event_source/devices/kprobe/type");
  if (!type)
    return make_error(
        "the kernel has no kprobe PMU (/sys/bus/event_source/devices/kprobe/type; "
        "CONFIG_KPROBE_EVENTS): no {} on {}",
        kind, function);
  int retprobe_bit = 0;
  if (retprobe) {
    // "config:0": which bit of perf_event_attr.config makes a probe a return probe.
    auto bit = read_pmu_number("/sys/bus/event_source/devices/kprobe/format/retprobe", "config:");
    if (!bit)
      return make_error("the kprobe PMU has no retprobe format: no {} on {}", kind, function);
    retprobe_bit = *bit;
  }
  route_libbpf_logs();
  const int prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, nullptr, "GPL", kReturnZero.data(),
                                 kReturnZero.size(), nullptr);
  if (prog < 0) return make_errno_error(errno, "the kernel refuses kprobe programs");
  const std::string fn(function);
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = static_cast<std::uint32_t>(*type);
  attr.config = retprobe ? 1ULL << retprobe_bit : 0;
  attr.config1 = reinterpret_cast<std::uint64_t>(fn.c_str());  // the function's name
  const int event =
      static_cast<int>(::syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
  int err = errno;
  if (event >= 0) {
    const int set = ::ioctl(event, PERF_EVENT_IOC_SET_BPF, prog);
    err = errno;
    ::close(event);
    if (set != 0) {
      ::close(prog);
      return make_errno_error(err, "the kernel cannot attach a BPF {} to {}", kind, function);
    }
  }
  ::close(prog);
  if (event < 0) return make_errno_error(err, "the kernel cannot put a {} on {}", kind, function);
  return {};
}

namespace {

// The file and file offset of code at `address` in this process, from /proc/self/maps.
Result<std::pair<std::string, std::uint64_t>> code_location(const void* address) {
  std::ifstream maps("/proc/self/maps");
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long long start = 0, end = 0, offset = 0;
    int path_at = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %*s %llx %*s %*s %n", &start, &end, &offset,
                    &path_at) != 3 ||
        path_at <= 0 || at < start || at >= end)
      continue;
    return std::pair<std::string, std::uint64_t>(line.substr(static_cast<std::size_t>(path_at)),
                                                 at - start + offset);
  }
  return make_error("no mapping of this process holds address {}", address);
}

// A uprobe (or uretprobe) perf event in this process on `path` at `offset` running `prog`.
Result<int> open_uprobe(int type, int retprobe_bit, const std::string& path, std::uint64_t offset,
                        bool retprobe, int prog) {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = static_cast<std::uint32_t>(type);
  attr.config = retprobe ? 1ULL << retprobe_bit : 0;
  attr.config1 = reinterpret_cast<std::uint64_t>(path.c_str());
  attr.config2 = offset;
  const int event = static_cast<int>(
      ::syscall(__NR_perf_event_open, &attr, ::getpid(), -1, -1, PERF_FLAG_FD_CLOEXEC));
  if (event < 0) return make_errno_error(errno, "cannot put a uprobe on {}", path);
  if (::ioctl(event, PERF_EVENT_IOC_SET_BPF, prog) != 0) {
    const int err = errno;
    ::close(event);
    return make_errno_error(err, "cannot attach a BPF program to a uprobe on {}", path);
  }
  return event;
}

// ns per fcntl(F_GETFD) call, over `calls` calls.
double fcntl_ns(int fd, int calls) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) (void)::fcntl(fd, F_GETFD);
  const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - t0;
  return took.count() / calls;
}

}  // namespace

namespace {

Result<double> measure_here(int calls, int rounds) {
  auto type = read_pmu_number("/sys/bus/event_source/devices/uprobe/type");
  auto bit = read_pmu_number("/sys/bus/event_source/devices/uprobe/format/retprobe", "config:");
  if (!type || !bit) return make_error("the uprobe PMU has no type or retprobe format");
  void* fcntl_code = ::dlsym(RTLD_DEFAULT, "fcntl64");
  if (!fcntl_code) fcntl_code = ::dlsym(RTLD_DEFAULT, "fcntl");
  if (!fcntl_code) return make_error("this process has no fcntl in its C library");
  auto where = code_location(fcntl_code);
  if (!where) return where.error();
  const files::Fd prog(bpf_prog_load(BPF_PROG_TYPE_KPROBE, nullptr, "GPL", kReturnZero.data(),
                                     kReturnZero.size(), nullptr));
  if (prog.get() < 0) return make_errno_error(errno, "the kernel refuses kprobe programs");
  const files::Fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return make_errno_error(errno, "cannot open /dev/null");
  std::vector<double> added;
  for (int r = 0; r < rounds; ++r) {
    const double without = fcntl_ns(fd.get(), calls);
    auto entry = open_uprobe(*type, *bit, where->first, where->second, false, prog.get());
    if (!entry) return entry.error();
    const files::Fd entry_fd(*entry);
    auto exit = open_uprobe(*type, *bit, where->first, where->second, true, prog.get());
    if (!exit) return exit.error();
    const files::Fd exit_fd(*exit);
    added.push_back(fcntl_ns(fd.get(), calls) - without);
  }
  std::nth_element(added.begin(), added.begin() + rounds / 2, added.end());
  return std::max(0.0, added[static_cast<std::size_t>(rounds / 2)]);
}

}  // namespace

// In a child process: the return probe's trampoline makes the kernel's uretprobe system call
// (x86, Linux 6.11+) in the probed process, and before 6.13 a seccomp filter that does not list it
// (systemd's SystemCallFilter, whose libseccomp may not know its name) kills that process.
Result<double> measure_fcntl_uprobe_ns(int calls, int rounds) {
  if (auto r = probe_uprobes(); !r) return r.error();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return make_errno_error(errno, "cannot make a pipe");
  files::Fd from_child(fds[0]), to_parent(fds[1]);
  const pid_t child = ::fork();
  if (child < 0) return make_errno_error(errno, "cannot fork to measure uprobes");
  if (child == 0) {
    from_child.release();
    auto ns = measure_here(calls, rounds);
    const std::string text = ns ? fmt::format("ok {}", *ns) : "error " + ns.error().message;
    (void)files::write_all(to_parent.get(), text);
    ::_exit(0);
  }
  to_parent.close();
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(from_child.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status))
    return make_error(
        "measuring them killed the measuring process with signal {} (a seccomp filter without "
        "the uretprobe system call, Linux 6.11-6.12: uprobes would kill a filtered manager too)",
        WTERMSIG(status));
  if (text.starts_with("ok ")) return std::stod(text.substr(3));
  if (text.starts_with("error ")) return make_error("{}", text.substr(6));
  return make_error("the measuring process said nothing (exit status {})", status);
}

Result<void> probe_bpf(bool syscall_tracepoints, bool kprobes) {
  if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0)
    return make_errno_error(errno,
                            "no kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF), "
                            "the CO-RE programs cannot be relocated");
  if (syscall_tracepoints) {
    auto tracefs = ensure_tracefs();
    if (!tracefs) return tracefs.error();
  }
  route_libbpf_logs();
  const auto type = syscall_tracepoints ? BPF_PROG_TYPE_TRACEPOINT
                    : kprobes           ? BPF_PROG_TYPE_KPROBE
                                        : BPF_PROG_TYPE_TRACING;
  int r = libbpf_probe_bpf_prog_type(type, nullptr);
  if (r < 0)
    return make_errno_error(-r, "cannot load BPF programs (needs root or CAP_BPF+CAP_PERFMON)");
  if (r == 0) return make_error("the kernel does not support this type of BPF program");
  if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) != 1)
    return make_error("the kernel has no BPF ring buffer (needs Linux 5.8+)");
  if (syscall_tracepoints &&
      libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_loop, nullptr) != 1)
    return make_error("the kernel has no bpf_loop helper (needs Linux 5.17+)");
  return {};
}

}  // namespace lockferry::capture
