// SPDX-License-Identifier: Apache-2.0
// TOML configuration of lockferryd; see config.h.
#include "config/config.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "config/listen_address.h"
#include "failover/recognizer.h"
#include "statmon/record.h"

namespace lockferry::daemon {
namespace {

std::string default_node_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "";
  return host;
}

Result<void> check_keys(const toml::table& table, std::string_view section,
                        const std::set<std::string_view>& allowed, std::string_view origin) {
  for (const auto& [key, value] : table) {
    if (!allowed.count(key.str())) {
      return make_error("{}: unknown key '{}{}{}' (allowed: {})", origin, section,
                        section.empty() ? "" : ".", key.str(), fmt::join(allowed, ", "));
    }
  }
  return {};
}

template <typename T>
Result<void> read_value(const toml::table& table, std::string_view key, std::string_view section,
                        std::string_view origin, T& out) {
  const toml::node* node = table.get(key);
  if (!node) return {};
  auto value = node->value<T>();
  if (!value) {
    return make_error("{}: '{}{}{}' has the wrong type (line {})", origin, section,
                      section.empty() ? "" : ".", key, node->source().begin.line);
  }
  out = *value;
  return {};
}

bool is_absolute_path(const std::string& p) { return !p.empty() && p[0] == '/'; }

Result<void> read_strings(const toml::table& table, std::string_view key, std::string_view section,
                          std::string_view origin, std::vector<std::string>& out) {
  const toml::node* node = table.get(key);
  if (!node) return {};
  const toml::array* arr = node->as_array();
  if (!arr) return make_error("{}: '{}.{}' must be an array of strings", origin, section, key);
  out.clear();
  for (const auto& item : *arr) {
    auto s = item.value<std::string>();
    if (!s) return make_error("{}: '{}.{}' must contain only strings", origin, section, key);
    out.push_back(*s);
  }
  return {};
}

// Milliseconds or seconds given as integers, with the range they must be in.
Result<void> read_duration(const toml::table& table, std::string_view key, std::string_view section,
                           std::string_view origin, std::int64_t min, std::int64_t max,
                           std::int64_t& out) {
  if (auto r = read_value(table, key, section, origin, out); !r) return r;
  if (out < min || out > max)
    return make_error("{}: '{}.{}' must be {}..{}, not {}", origin, section, key, min, max, out);
  return {};
}

Result<void> parse_health(const toml::table& t, std::string_view origin, health::Options& h) {
  if (auto r = check_keys(t, "health",
                          {"heartbeats", "listen", "peers", "key_file", "interval_ms", "dead_after_ms",
                           "replay_window_ms", "check_command", "check_interval_ms",
                           "check_timeout_ms", "check_failures"},
                          origin);
      !r)
    return r;
  h.enabled = true;
  if (auto r = read_value(t, "heartbeats", "health", origin, h.heartbeats); !r) return r;
  if (auto r = read_value(t, "listen", "health", origin, h.listen); !r) return r;
  if (auto r = read_value(t, "key_file", "health", origin, h.key_file); !r) return r;
  if (const toml::node* peers = t.get("peers")) {
    const toml::table* pt = peers->as_table();
    if (!pt) return make_error("{}: 'health.peers' must be a table: [health.peers] node = \"IP:PORT\"", origin);
    for (const auto& [node, address] : *pt) {
      auto a = address.value<std::string>();
      if (!a) return make_error("{}: 'health.peers.{}' must be a string \"IP:PORT\"", origin, node.str());
      h.peers[std::string(node.str())] = *a;
    }
  }
  struct {
    const char* key;
    std::int64_t min, max;
    health::Millis* out;
  } durations[] = {{"interval_ms", 50, 60000, &h.interval},
                   {"dead_after_ms", 100, 600000, &h.dead_after},
                   {"replay_window_ms", 50, 600000, &h.replay_window},
                   {"check_interval_ms", 100, 3600000, &h.check_interval},
                   {"check_timeout_ms", 100, 3600000, &h.check_timeout}};
  for (auto& d : durations) {
    std::int64_t v = d.out->count();
    if (auto r = read_duration(t, d.key, "health", origin, d.min, d.max, v); !r) return r;
    *d.out = health::Millis(v);
  }
  std::int64_t failures = h.check_failures;
  if (auto r = read_duration(t, "check_failures", "health", origin, 1, 100, failures); !r) return r;
  h.check_failures = static_cast<int>(failures);
  return read_strings(t, "check_command", "health", origin, h.check_command);
}

}  // namespace

Result<Config> parse_config(std::string_view toml_text, std::string_view origin) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    return make_error("{}:{}:{}: {}", origin, e.source().begin.line, e.source().begin.column,
                      e.description());
  }
  Config cfg;
  cfg.node = default_node_name();

  if (auto r = check_keys(root, "",
                          {"node", "store", "log_level", "capture", "control", "failover", "metrics",
                           "health", "locks"},
                          origin); !r)
    return r.error();
#define LF_READ(tbl, key, section, out)                                     \
  if (auto r = read_value(tbl, key, section, origin, out); !r) return r.error()
  LF_READ(root, "node", "", cfg.node);
  LF_READ(root, "store", "", cfg.store_url);
  LF_READ(root, "log_level", "", cfg.log_level);

  if (const toml::table* cap = root["capture"].as_table()) {
    if (auto r = check_keys(*cap, "capture", {"monitor_dirs", "mode", "reconcile_interval_s", "pin_dir",
                                           "ring_buffer_kb"},
                            origin); !r)
      return r.error();
    if (const toml::node* dirs = cap->get("monitor_dirs")) {
      const toml::array* arr = dirs->as_array();
      if (!arr) return make_error("{}: 'capture.monitor_dirs' must be an array of paths", origin);
      cfg.monitor_dirs.clear();
      for (const auto& item : *arr) {
        auto s = item.value<std::string>();
        if (!s) return make_error("{}: 'capture.monitor_dirs' must contain only strings", origin);
        cfg.monitor_dirs.push_back(*s);
      }
    }
    std::string mode = capture::to_string(cfg.capture_mode);
    LF_READ(*cap, "mode", "capture", mode);
    auto parsed = capture::mode_from_string(mode);
    if (!parsed) return make_error("{}: 'capture.mode': {}", origin, parsed.error().message);
    cfg.capture_mode = *parsed;
    std::int64_t interval = cfg.reconcile_interval.count();
    LF_READ(*cap, "reconcile_interval_s", "capture", interval);
    if (interval < 1 || interval > 86400)
      return make_error("{}: 'capture.reconcile_interval_s' must be 1..86400 seconds, not {}", origin,
                        interval);
    cfg.reconcile_interval = std::chrono::seconds(interval);
    LF_READ(*cap, "pin_dir", "capture", cfg.pin_dir);
    std::int64_t ring_kb = cfg.ring_buffer_kb;
    LF_READ(*cap, "ring_buffer_kb", "capture", ring_kb);
    // The kernel wants a power-of-two number of pages; below 4 KiB a single event barely fits.
    if (ring_kb < capture::kMinRingBufferKb || ring_kb > capture::kMaxRingBufferKb ||
        (ring_kb & (ring_kb - 1)) != 0)
      return make_error("{}: 'capture.ring_buffer_kb' must be a power of two from {} to {}, not {}",
                        origin, capture::kMinRingBufferKb, capture::kMaxRingBufferKb, ring_kb);
    cfg.ring_buffer_kb = static_cast<std::uint32_t>(ring_kb);
  } else if (root.contains("capture")) {
    return make_error("{}: 'capture' must be a table ([capture])", origin);
  }

  if (const toml::table* ctl = root["control"].as_table()) {
    if (auto r = check_keys(*ctl, "control", {"socket"}, origin); !r) return r.error();
    LF_READ(*ctl, "socket", "control", cfg.socket_path);
  }
  if (const toml::table* fo = root["failover"].as_table()) {
    if (auto r = check_keys(*fo, "failover",
                            {"statmon_dir", "service_ip", "recognize", "recognize_command",
                             "recognize_timeout_s", "automatic", "adopt_order", "takeover_command",
                             "takeover_timeout_s", "audit_after_s"},
                            origin);
        !r)
      return r.error();
    LF_READ(*fo, "statmon_dir", "failover", cfg.statmon_dir);
    LF_READ(*fo, "service_ip", "failover", cfg.service_ip);
    LF_READ(*fo, "recognize", "failover", cfg.recognize);
    LF_READ(*fo, "automatic", "failover", cfg.automatic);
    for (auto [key, out] : {std::pair{"recognize_command", &cfg.recognize_command},
                            std::pair{"adopt_order", &cfg.adopt_order},
                            std::pair{"takeover_command", &cfg.takeover_command}}) {
      if (auto r = read_strings(*fo, key, "failover", origin, *out); !r) return r.error();
    }
    for (auto [key, out] : {std::pair{"recognize_timeout_s", &cfg.recognize_timeout},
                            std::pair{"takeover_timeout_s", &cfg.takeover_timeout},
                            std::pair{"audit_after_s", &cfg.audit_after}}) {
      std::int64_t v = out->count();
      if (auto r = read_duration(*fo, key, "failover", origin, 1, 3600, v); !r) return r.error();
      *out = std::chrono::seconds(v);
    }
  }
  if (const toml::table* h = root["health"].as_table()) {
    if (auto r = parse_health(*h, origin, cfg.health); !r) return r.error();
  } else if (root.contains("health")) {
    return make_error("{}: 'health' must be a table ([health])", origin);
  }
  if (const toml::table* lk = root["locks"].as_table()) {
    if (auto r = check_keys(*lk, "locks",
                            {"enabled", "managers", "manager_binaries", "hook", "ring_buffer_kb",
                             "reconcile_interval_s"},
                            origin);
        !r)
      return r.error();
    LF_READ(*lk, "enabled", "locks", cfg.locks_enabled);
    if (const toml::node* managers = lk->get("managers")) {
      const toml::array* arr = managers->as_array();
      if (!arr) return make_error("{}: 'locks.managers' must be an array of process names", origin);
      cfg.lock_managers.clear();
      for (const auto& item : *arr) {
        auto name = item.value<std::string>();
        if (!name) return make_error("{}: 'locks.managers' must contain only strings", origin);
        cfg.lock_managers.push_back(*name);
      }
    }
    if (auto r = capture::check_manager_names(cfg.lock_managers); !r)
      return make_error("{}: 'locks.managers': {}", origin, r.error().message);
    if (auto r = read_strings(*lk, "manager_binaries", "locks", origin, cfg.lock_manager_binaries);
        !r)
      return r.error();
    for (const auto& b : cfg.lock_manager_binaries)
      if (!is_absolute_path(b))
        return make_error("{}: 'locks.manager_binaries': \"{}\" must be an absolute path", origin,
                          b);
    std::string hook = capture::to_string(cfg.lock_hook);
    LF_READ(*lk, "hook", "locks", hook);
    auto parsed = capture::lock_hook_from_string(hook);
    if (!parsed) return make_error("{}: 'locks.hook': {}", origin, parsed.error().message);
    cfg.lock_hook = *parsed;
    // Same sizes as [capture] ring_buffer_kb: the kernel wants a power-of-two number of pages.
    std::int64_t ring_kb = cfg.lock_ring_buffer_kb;
    LF_READ(*lk, "ring_buffer_kb", "locks", ring_kb);
    if (ring_kb < capture::kMinRingBufferKb || ring_kb > capture::kMaxRingBufferKb ||
        (ring_kb & (ring_kb - 1)) != 0)
      return make_error("{}: 'locks.ring_buffer_kb' must be a power of two from {} to {}, not {}",
                        origin, capture::kMinRingBufferKb, capture::kMaxRingBufferKb, ring_kb);
    if (auto r = capture::lock_ring_bytes(static_cast<std::uint32_t>(ring_kb)); !r)
      return make_error("{}: 'locks.ring_buffer_kb': {}", origin, r.error().message);
    cfg.lock_ring_buffer_kb = static_cast<std::uint32_t>(ring_kb);
    // Unlike [capture], 0 is allowed: the lock table is then reconciled only after dropped events.
    std::int64_t interval = cfg.lock_reconcile_interval.count();
    LF_READ(*lk, "reconcile_interval_s", "locks", interval);
    if (interval < 0 || interval > 86400)
      return make_error(
          "{}: 'locks.reconcile_interval_s' must be 0..86400 seconds (0 = only after dropped "
          "events), not {}",
          origin, interval);
    cfg.lock_reconcile_interval = std::chrono::seconds(interval);
  } else if (root.contains("locks")) {
    return make_error("{}: 'locks' must be a table ([locks])", origin);
  }
  if (const toml::table* met = root["metrics"].as_table()) {
    if (auto r = check_keys(*met, "metrics", {"listen"}, origin); !r) return r.error();
    LF_READ(*met, "listen", "metrics", cfg.metrics_listen);
  }
#undef LF_READ

  if (cfg.node.empty()) return make_error("{}: 'node' is empty and the host name is unknown", origin);
  if (auto r = statmon::check_file_name(cfg.node); !r)
    return make_error("{}: 'node' = \"{}\" cannot be a node name: {}", origin, cfg.node,
                      r.error().message);
  static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (!levels.count(cfg.log_level))
    return make_error("{}: 'log_level' = \"{}\" is not one of trace, debug, info, warn, error",
                      origin, cfg.log_level);
  if (cfg.monitor_dirs.empty())
    return make_error("{}: 'capture.monitor_dirs' is empty: name statd's monitor directory, "
                      "usually /var/lib/nfs/sm", origin);
  for (const auto& d : cfg.monitor_dirs) {
    if (!is_absolute_path(d))
      return make_error("{}: monitor directory \"{}\" must be an absolute path", origin, d);
  }
  if (!is_absolute_path(cfg.socket_path))
    return make_error("{}: 'control.socket' must be an absolute path", origin);
  if (!is_absolute_path(cfg.statmon_dir))
    return make_error("{}: 'failover.statmon_dir' must be an absolute path", origin);
  cfg.health.service_ip = cfg.service_ip;  // the built-in check when there is no check_command
  if (auto r = health::check_options(cfg.health, cfg.node); !r)
    return make_error("{}: {}", origin, r.error().message);
  if (cfg.automatic && !cfg.health.enabled)
    return make_error("{}: 'failover.automatic' needs a [health] section: who would declare a node "
                      "down? (heartbeats, or `lockferry health set-down` from your cluster manager)",
                      origin);
  if (auto m = failover::recognize_method_from_string(cfg.recognize); !m)
    return make_error("{}: 'failover.recognize': {}", origin, m.error().message);
  if (!cfg.metrics_listen.empty()) {
    if (auto r = parse_listen_address(cfg.metrics_listen); !r)
      return make_error("{}: 'metrics.listen': {}", origin, r.error().message);
  }
  return cfg;
}

Result<Config> load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_errno_error(errno, "cannot read config file {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

std::string lock_owner_key_path(const Config& config) {
  const std::filesystem::path socket(config.socket_path);
  const auto dir = socket.has_parent_path() ? socket.parent_path() : std::filesystem::path(".");
  return (dir / "lock-owner-key").string();
}

}  // namespace lockferry::daemon
