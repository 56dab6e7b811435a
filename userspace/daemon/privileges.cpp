// SPDX-License-Identifier: Apache-2.0
// Capability dropping; see privileges.h.
#include "daemon/privileges.h"

#include <spdlog/spdlog.h>
#include <sys/capability.h>

#include <memory>

namespace lockferry::daemon {

std::vector<KeptCapability> capabilities_to_keep() {
  std::vector<KeptCapability> keep{
      {"cap_dac_override", "read statd's 0600 monitor records and replay into its directory"},
      {"cap_dac_read_search", "scan statd's monitor directory whatever its mode"},
      {"cap_chown", "give replayed records statd's owner, which sm-notify needs"},
      {"cap_fowner", "replace replayed records owned by statd"},
      // sm-notify switches to statd's user: without this a timed-out sm-notify cannot be stopped
      // and holds the failover for its whole retry time.
      {"cap_kill",
       "stop a recognition, takeover or health check command that outlives its timeout"},
      // Reading another process's /proc/<pid>/fdinfo is a ptrace-read check: a lock manager
      // running as root with every capability is readable only with this one.
      {"cap_sys_ptrace",
       "read the lock managers' /proc/<pid>/fdinfo to reconcile the lock table after lost events"},
      // sm-notify (nfs-utils) binds its RPC socket to a reserved port (bindresvport), then drops
      // to the owner of sm/: it empties its capability bounding set (PR_CAPBSET_DROP, which needs
      // CAP_SETPCAP) and switches user. Without these, every notification fails under
      // NoNewPrivileges: "bindresvport on RPC socket failed: Permission denied", then "Unable to
      // prune capability 0 from bounding set: Operation not permitted".
      // The built-in notifier (recognize = notify) binds its reserved port in lockferryd itself.
      {"cap_net_bind_service",
       "send SM_NOTIFY from a reserved port (the built-in notifier, and sm-notify)"},
      {"cap_setpcap", "let sm-notify empty its capability bounding set", true},
      {"cap_setuid", "let sm-notify switch to the owner of statd's directory", true},
      {"cap_setgid", "let sm-notify switch to the group of statd's directory", true},
  };
  // Linux < 5.8 has no CAP_BPF: map reads then need CAP_SYS_ADMIN, which we would rather not
  // keep; such kernels also lack bpf_loop, so capture runs on fanotify/inotify there anyway.
  if (CAP_IS_SUPPORTED(CAP_BPF)) {
    keep.push_back(
        {"cap_bpf", "read the counters and update the watched-directory and lock-manager maps"});
    keep.push_back({"cap_perfmon", "read the counters of the attached tracepoint programs"});
  }
  return keep;
}

Result<void> drop_capabilities(const std::vector<KeptCapability>& keep) {
  std::unique_ptr<std::remove_pointer_t<cap_t>, int (*)(void*)> caps(cap_init(), cap_free);
  if (!caps) return make_errno_error(errno, "cap_init");
  // A capability outside our permitted set (a service manager's CapabilityBoundingSet, a
  // container) cannot be kept: asking for it makes cap_set_proc fail with EPERM and would leave
  // the daemon holding every capability. Keep what we have, say what we lack.
  std::unique_ptr<std::remove_pointer_t<cap_t>, int (*)(void*)> current(cap_get_proc(), cap_free);
  if (!current) return make_errno_error(errno, "cap_get_proc");
  std::vector<cap_value_t> values;     // permitted
  std::vector<cap_value_t> effective;  // permitted and raised in lockferryd
  std::vector<const KeptCapability*> kept;
  for (const auto& k : keep) {
    cap_value_t v;
    if (cap_from_name(k.name.c_str(), &v) != 0)
      return make_error("unknown capability {} (libcap too old?)", k.name);
    cap_flag_value_t permitted = CAP_CLEAR;
    if (cap_get_flag(current.get(), v, CAP_PERMITTED, &permitted) != 0 || permitted != CAP_SET) {
      spdlog::warn(
          "privileges: cannot keep {}, which this process was started without; it is needed to {}",
          k.name, k.why);
      continue;
    }
    values.push_back(v);
    if (!k.for_commands_only) effective.push_back(v);
    kept.push_back(&k);
  }
  if ((!effective.empty() &&
       cap_set_flag(caps.get(), CAP_EFFECTIVE, static_cast<int>(effective.size()), effective.data(),
                    CAP_SET) != 0) ||
      (!values.empty() && cap_set_flag(caps.get(), CAP_PERMITTED, static_cast<int>(values.size()),
                                       values.data(), CAP_SET) != 0))
    return make_errno_error(errno, "cap_set_flag");
  if (cap_set_proc(caps.get()) != 0) return make_errno_error(errno, "cap_set_proc");
  for (const auto* k : kept)
    spdlog::info("privileges: keeping {}{} ({})", k->name,
                 k->for_commands_only ? " for the commands it runs" : "", k->why);
  spdlog::info("privileges: dropped every other capability now that capture is attached");
  return {};
}

}  // namespace lockferry::daemon
