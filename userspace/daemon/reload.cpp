// SPDX-License-Identifier: Apache-2.0
// The reload table and the difference between two configurations; see reload.h.
#include "daemon/reload.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <functional>
#include <map>

#include "common/clock.h"
#include "daemon/daemon.h"

namespace lockferry::daemon {
namespace {

// How a value is shown in "running X, file Y".
std::string show(const std::string& v) { return v.empty() ? "\"\"" : fmt::format("\"{}\"", v); }
std::string show(bool v) { return v ? "true" : "false"; }
std::string show(int v) { return std::to_string(v); }
std::string show(std::uint32_t v) { return std::to_string(v); }
std::string show(std::chrono::seconds v) { return std::to_string(v.count()); }
std::string show(std::chrono::milliseconds v) { return std::to_string(v.count()); }
std::string show(capture::Mode v) { return capture::to_string(v); }
std::string show(capture::LockHook v) { return capture::to_string(v); }
std::string show(const std::vector<std::string>& v) {
  std::vector<std::string> shown;
  for (const auto& s : v) shown.push_back(show(s));
  return fmt::format("[{}]", fmt::join(shown, ", "));
}
std::string show(const std::map<std::string, std::string>& v) {
  std::vector<std::string> shown;
  for (const auto& [k, s] : v) shown.push_back(fmt::format("{} = {}", k, show(s)));
  return fmt::format("{{{}}}", fmt::join(shown, ", "));
}

struct Setting {
  std::string key;
  Takes takes;
  std::function<bool(const Config&, const Config&)> same;
  std::function<void(const Config& from, Config& to)> copy;
  std::function<std::string(const Config&)> shown;
};

// A setting held in one member of Config (or of one of its members).
template <typename T>
Setting setting(std::string key, Takes takes, std::function<T&(Config&)> get) {
  auto at = [get](const Config& c) -> const T& { return get(const_cast<Config&>(c)); };
  return {std::move(key), takes, [at](const Config& a, const Config& b) { return at(a) == at(b); },
          [get, at](const Config& from, Config& to) { get(to) = at(from); },
          [at](const Config& c) { return show(at(c)); }};
}

#define LF_SETTING(key, takes, member) \
  setting<decltype(Config{}.member)>(  \
      key, takes, [](Config & c) -> auto& { return c.member; })

// The one table of settings and how each takes effect on SIGHUP. Live ones are applied by
// Daemon::reload (monitor directories, lock managers, log level) or read from the running
// configuration when they are used (failover settings: by migrations through the socket and by
// automatic adoption alike). Restart ones are owned by something started once: the store and
// node (every record names them), the BPF programs and their ring buffers, the control socket,
// the health agent's sockets and timers, the metrics listener.
const std::vector<Setting>& settings() {
  static const std::vector<Setting> table = [] {
    using enum Takes;
    return std::vector<Setting>{
        LF_SETTING("node", restart, node),
        LF_SETTING("store", restart, store_url),
        LF_SETTING("log_level", live, log_level),
        LF_SETTING("capture.monitor_dirs", live, monitor_dirs),
        LF_SETTING("capture.mode", restart, capture_mode),
        LF_SETTING("capture.reconcile_interval_s", live, reconcile_interval),
        LF_SETTING("capture.pin_dir", restart, pin_dir),
        LF_SETTING("capture.ring_buffer_kb", restart, ring_buffer_kb),
        LF_SETTING("control.socket", restart, socket_path),
        LF_SETTING("failover.statmon_dir", live, statmon_dir),
        LF_SETTING("failover.service_ip", live, service_ip),
        LF_SETTING("failover.recognize", live, recognize),
        LF_SETTING("failover.recognize_command", live, recognize_command),
        LF_SETTING("failover.recognize_timeout_s", live, recognize_timeout),
        LF_SETTING("failover.automatic", live, automatic),
        LF_SETTING("failover.adopt_order", live, adopt_order),
        LF_SETTING("failover.takeover_command", live, takeover_command),
        LF_SETTING("failover.takeover_timeout_s", live, takeover_timeout),
        LF_SETTING("failover.audit_after_s", live, audit_after),
        LF_SETTING("health", restart, health.enabled),  // the section added or removed
        LF_SETTING("health.heartbeats", restart, health.heartbeats),
        LF_SETTING("health.listen", restart, health.listen),
        LF_SETTING("health.peers", restart, health.peers),
        LF_SETTING("health.key_file", restart, health.key_file),
        LF_SETTING("health.interval_ms", restart, health.interval),
        LF_SETTING("health.dead_after_ms", restart, health.dead_after),
        LF_SETTING("health.replay_window_ms", restart, health.replay_window),
        LF_SETTING("health.check_command", restart, health.check_command),
        LF_SETTING("health.check_interval_ms", restart, health.check_interval),
        LF_SETTING("health.check_timeout_ms", restart, health.check_timeout),
        LF_SETTING("health.check_failures", restart, health.check_failures),
        // The built-in check's address (failover.service_ip, when there is no check_command).
        LF_SETTING("health (service_ip)", restart, health.service_ip),
        LF_SETTING("locks.enabled", restart, locks_enabled),
        LF_SETTING("locks.managers", live, lock_managers),
        LF_SETTING("locks.manager_binaries", live, lock_manager_binaries),
        LF_SETTING("locks.hook", restart, lock_hook),
        LF_SETTING("locks.ring_buffer_kb", restart, lock_ring_buffer_kb),
        LF_SETTING("locks.reconcile_interval_s", restart, lock_reconcile_interval),
        LF_SETTING("metrics.listen", restart, metrics_listen),
    };
  }();
  return table;
}

#undef LF_SETTING

}  // namespace

std::vector<SettingInfo> reloadable_settings() {
  std::vector<SettingInfo> out;
  for (const auto& s : settings()) out.push_back({s.key, s.takes});
  return out;
}

ConfigDiff diff_config(const Config& running, const Config& file) {
  ConfigDiff d;
  // Without [health] on either side its keys are defaults on both: nothing to report.
  const bool health = running.health.enabled || file.health.enabled;
  for (const auto& s : settings()) {
    if (s.same(running, file) || (!health && s.key.starts_with("health"))) continue;
    if (s.takes == Takes::live)
      d.live.push_back(s.key);
    else
      d.restart.push_back(
          fmt::format("{}: running {}, file {}", s.key, s.shown(running), s.shown(file)));
  }
  return d;
}

Config running_after_reload(const Config& running, Config file) {
  for (const auto& s : settings())
    if (s.takes == Takes::restart) s.copy(running, file);
  return file;
}

nlohmann::json ReloadReport::to_json() const {
  return {{"last", at_ns ? clock::format_ns(at_ns) : std::string()},
          {"ok", ok},
          {"error", error},
          {"applied", applied},
          {"needs_restart", needs_restart}};
}

// Daemon::reload lives here, next to the table it follows.
void Daemon::reload() {
  ::sd_notify(0, "RELOADING=1");
  ReloadReport report;
  report.at_ns = clock::now_ns();
  auto file = load_config(config_path_);
  if (!file) {
    // Parsed and validated as a whole first: a bad file changes nothing.
    report.ok = false;
    report.error = file.error().message;
    report.needs_restart = reload_.needs_restart;  // still true of the running configuration
    spdlog::error("reload: keeping the running configuration: {}", report.error);
  } else {
    ConfigDiff diff = diff_config(config_, *file);
    Config next = running_after_reload(config_, *file);
    if (next.monitor_dirs != config_.monitor_dirs) {
      if (auto r = capture_->set_dirs(next.monitor_dirs); !r) {
        report.ok = false;
        report.error = "cannot watch the new monitor directories: " + r.error().message;
        spdlog::error("reload: {}; still watching {}", report.error,
                      fmt::join(config_.monitor_dirs, ", "));
        next.monitor_dirs = config_.monitor_dirs;
        std::erase(diff.live, "capture.monitor_dirs");
        diff.restart.push_back("capture.monitor_dirs: " + report.error);
      }
    }
    reload_locks(next);
    if (cluster_) cluster_->reload(next);
    spdlog::set_level(spdlog::level::from_str(next.log_level));
    const bool new_interval = next.reconcile_interval != config_.reconcile_interval;
    config_ = std::move(next);
    if (new_interval) schedule_reconcile(config_.reconcile_interval);
    report.applied = diff.live;
    report.needs_restart = diff.restart;
    if (diff.empty()) spdlog::info("reload: {} has no changes", config_path_);
    if (!diff.live.empty()) spdlog::info("reload: applied {}", fmt::join(diff.live, ", "));
    for (const auto& change : diff.restart)
      spdlog::warn(
          "reload: {} - takes effect only when lockferryd restarts; the running value "
          "stays until then",
          change);
    spdlog::info("reload: now watching {}", fmt::join(config_.monitor_dirs, ", "));
    reconcile_now("reload");
  }
  reload_ = std::move(report);
  ::sd_notify(0, "READY=1");
}

}  // namespace lockferry::daemon
