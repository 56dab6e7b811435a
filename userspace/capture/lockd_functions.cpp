// SPDX-License-Identifier: Apache-2.0
// lockd's function signatures against the kprobe programs; see lockd_functions.h.
#include "capture/lockd_functions.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <memory>
#include <string_view>

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

}  // namespace lockferry::capture
