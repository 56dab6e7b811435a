// SPDX-License-Identifier: Apache-2.0
// lockd's function signatures against the kprobe programs; see lockd_functions.h.
#include "capture/lockd_functions.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string_view>

#include "common/files.h"

namespace lockferry::capture {
namespace {

// What lock_watch.bpf.c reads: argument `index` of `function` is `param`.
struct Argument {
  std::string_view function;
  unsigned index;
  std::string_view param;
  bool optional;  // the program is optional too (Need::optional in bpf_programs.cpp)
};

constexpr Argument kArguments[] = {
    {"nlmsvc_lock", 3, "lock", false},   {"nlmsvc_unlock", 2, "lock", false},
    {"nlm_async_call", 0, "req", false}, {"nlm_async_call", 1, "proc", false},
    {"nlm_unlock_files", 1, "fl", true},
};

using BtfPtr = std::unique_ptr<btf, void (*)(btf*)>;

Result<void> check_argument(const btf* lockd, const Argument& a) {
  const std::string name(a.function);
  const int id = btf__find_by_name_kind(lockd, name.c_str(), BTF_KIND_FUNC);
  if (id < 0) return make_error("kernel lockd's BTF has no function {}", a.function);
  const btf_type* proto = btf__type_by_id(lockd, btf__type_by_id(lockd, id)->type);
  if (!proto || !btf_is_func_proto(proto) || btf_vlen(proto) <= a.index)
    return make_error("kernel lockd's {} takes fewer than {} arguments", a.function, a.index + 1);
  const std::string_view got = btf__name_by_offset(lockd, btf_params(proto)[a.index].name_off);
  if (got != a.param)
    return make_error(
        "argument {} of kernel lockd's {} is '{}', not '{}' as the kprobe programs "
        "expect",
        a.index + 1, a.function, got, a.param);
  return {};
}

}  // namespace

Result<void> check_lockd_functions(bool optional) {
  BtfPtr vmlinux(btf__load_vmlinux_btf(), btf__free);
  if (!vmlinux) return make_errno_error(errno, "cannot read the kernel's BTF");
  BtfPtr lockd(btf__load_module_btf("lockd", vmlinux.get()), btf__free);
  if (!lockd)
    return make_errno_error(errno,
                            "no BTF for kernel lockd (/sys/kernel/btf/lockd: the lockd module is "
                            "not loaded, or was built without BTF)");
  for (const auto& a : kArguments)
    if (a.optional == optional)
      if (auto r = check_argument(lockd.get(), a); !r) return r;
  return {};
}

namespace {

using State = LockdPresence::State;

// modules.dep and modules.builtin name every module of a kernel by its path
// ("kernel/fs/lockd/lockd.ko[.xz]"); nullopt when neither can be read.
std::optional<bool> modules_list_lockd(const std::string& dir) {
  bool read_any = false;
  for (const char* list : {"/modules.dep", "/modules.builtin"}) {
    auto text = files::read_file_bounded(dir + list, 64 << 20);
    if (!text) continue;
    read_any = true;
    if (text->find("/lockd.ko") != std::string::npos) return true;
  }
  return read_any ? std::optional<bool>(false) : std::nullopt;
}

// CONFIG_LOCKD of the kernel's build configuration, when /boot has it.
std::optional<State> config_lockd(const std::string& path) {
  auto text = files::read_file_bounded(path, 16 << 20);
  if (!text) return std::nullopt;
  if (text->find("\nCONFIG_LOCKD=m") != std::string::npos) return State::loadable;
  if (text->find("\nCONFIG_LOCKD=y") != std::string::npos) return State::loaded;
  return State::absent;
}

}  // namespace

LockdPresence lockd_presence(const std::string& root) {
  if (::access((root + "/sys/module/lockd").c_str(), F_OK) == 0)
    return {State::loaded, "/sys/module/lockd exists"};
  if (::access((root + "/proc/modules").c_str(), F_OK) != 0 && errno == ENOENT)
    return {State::absent,
            "not built in (no /sys/module/lockd) and this kernel loads no modules "
            "(no /proc/modules)"};
  utsname u{};
  ::uname(&u);
  const std::string modules = root + "/lib/modules/" + u.release;
  if (auto listed = modules_list_lockd(modules))
    return *listed
               ? LockdPresence{State::loadable, "not loaded, but " + modules + " has lockd.ko"}
               : LockdPresence{State::absent, "not loaded, and " + modules +
                                                  "/modules.dep and modules.builtin have no lockd"};
  const std::string config = root + "/boot/config-" + u.release;
  if (auto state = config_lockd(config)) {
    if (*state == State::absent) return {State::absent, config + " has no CONFIG_LOCKD"};
    return {State::loadable, "not loaded, but " + config + " builds lockd"};
  }
  return {State::loadable, "not loaded, and nothing shows this kernel lacks it (" + modules +
                               " and " + config + " are unreadable)"};
}

}  // namespace lockferry::capture
