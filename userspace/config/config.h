// SPDX-License-Identifier: Apache-2.0
// lockferryd's configuration (TOML), parsed and validated as a whole before anything uses it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "capture/capture.h"
#include "capture/lock_capture.h"
#include "health/agent.h"
#include "lockferry/result.h"

namespace lockferry::daemon {

inline constexpr const char* kDefaultConfigPath = "/etc/lockferry/lockferry.toml";
inline constexpr const char* kDefaultSocketPath = "/run/lockferry/lockferryd.sock";
inline constexpr const char* kDefaultStoreUrl = "dir:///var/lib/lockferry/store";

struct Config {
  std::string node;  // this server's node name (default: the host name)
  std::string store_url = kDefaultStoreUrl;
  std::string log_level = "info";  // trace, debug, info, warn, error
  // [capture]
  std::vector<std::string> monitor_dirs{"/var/lib/nfs/sm"};
  capture::Mode capture_mode = capture::Mode::automatic;
  std::chrono::seconds reconcile_interval{30};
  std::string pin_dir = "/sys/fs/bpf/lockferry";
  std::uint32_t ring_buffer_kb = capture::kDefaultRingBufferKb;  // BPF event ring buffer size
  // [control]
  std::string socket_path = kDefaultSocketPath;
  // [failover]
  std::string statmon_dir = "/var/lib/nfs/sm";  // where adopted records are replayed
  std::string service_ip;                       // the floating IP clients mount from
  // The built-in SM_NOTIFY sender (userspace/notify): sm-notify's job for the replayed clients, all
  // at once, with a result per client; "sm-notify" runs nfs-utils' instead.
  std::string recognize = "notify";
  std::vector<std::string>
      recognize_command;  // overrides the method's command ({service_ip}, {state_dir})
  std::chrono::seconds recognize_timeout{60};
  // Automatic adoption of a node the health agent declares down (needs [health]).
  bool automatic = false;
  std::vector<std::string> adopt_order;  // preferred adoptive nodes, first first
  std::vector<std::string>
      takeover_command;  // takes the service here before replay ({from}, {node}, {service_ip})
  std::chrono::seconds takeover_timeout{120};
  std::chrono::seconds audit_after{
      90};  // the adoptive server's grace period: final reclaim audit then
  // [health] (enabled when the section is present)
  health::Options health;
  // [locks]: lock grant capture (eBPF on the filelock tracepoints)
  bool locks_enabled = true;
  std::vector<std::string> lock_managers{"lockd", "ganesha.nfsd"};  // process names
  // A user process with a manager's name counts only when it runs as root from one of these.
  std::vector<std::string> lock_manager_binaries = capture::kDefaultManagerBinaries;
  capture::LockHook lock_hook =
      capture::LockHook::automatic;  // auto | kprobe | tp_btf | tracepoint
  // The lock capture's own BPF ring buffer (KiB) and its reconcile with the kernel's locks; the
  // defaults are LockOptions' so lockferryd and the capture's tests agree.
  std::uint32_t lock_ring_buffer_kb = capture::LockOptions{}.ring_buffer_kb;
  std::chrono::seconds lock_reconcile_interval =  // 0 = only after dropped events
      std::chrono::duration_cast<std::chrono::seconds>(capture::LockOptions{}.reconcile_interval);
  // [metrics]
  std::string metrics_listen;  // "127.0.0.1:9464" serves Prometheus /metrics there; "" = off
};

// What the command line sets over the file (lockferryd --node). Applied before validation, so a
// start and every SIGHUP parse, override and validate the same way.
struct Overrides {
  std::string node;  // "" = the file's (or the host name)
};

// Parses TOML text through the settings table (config/settings.h), applies `overrides`, and
// validates the whole; `origin` names the file in error messages. Every error names the key and
// says what is allowed. Unknown keys are errors too (a typo must not silently mean a default).
Result<Config> parse_config(std::string_view toml_text, std::string_view origin,
                            const Overrides& overrides = {});
Result<Config> load_config(const std::string& path, const Overrides& overrides = {});

// The lock owner hash key file (owner_hash/owner_hasher.h): in the daemon's runtime directory, the
// directory of its control socket (/run/lockferry, systemd's RuntimeDirectory=), so a daemon
// given another socket directory keeps its key there too.
std::string lock_owner_key_path(const Config& config);

}  // namespace lockferry::daemon
