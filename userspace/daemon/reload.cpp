// SPDX-License-Identifier: Apache-2.0
// A SIGHUP reload: the difference between two configurations and the report; see reload.h.
#include "daemon/reload.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include "common/clock.h"
#include "daemon/daemon.h"

namespace lockferry::daemon {

ConfigDiff diff_config(const Config& running, const Config& file) {
  ConfigDiff d;
  // Without [health] on either side its keys are defaults on both: nothing to report.
  const bool health = running.health.enabled || file.health.enabled;
  for (const auto& c : setting_changes(running, file)) {
    if (!health && c.key.starts_with("health")) continue;
    if (c.takes == Takes::live)
      d.live.push_back(c.key);
    else
      d.restart.push_back(fmt::format("{}: running {}, file {}", c.key, c.running, c.file));
  }
  return d;
}

Config running_after_reload(const Config& running, Config file) {
  keep_restart_settings(running, file);
  return file;
}

nlohmann::json ReloadReport::to_json() const {
  return {{"last", at_ns ? clock::format_ns(at_ns) : std::string()},
          {"count", count},
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
  report.count = reload_.count + 1;
  auto file = load_config(config_path_, overrides_);
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
