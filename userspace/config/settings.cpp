// SPDX-License-Identifier: Apache-2.0
// The settings table and reading a TOML file through it; see settings.h.
#include "config/settings.h"

#include <toml++/toml.h>

#include <functional>
#include <map>
#include <set>

#include "config/listen_address.h"
#include "failover/recognizer.h"

namespace lockferry::daemon {
namespace {

// How a value is shown: in a reload report ("running X, file Y") and as a default.
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

// The allowed values of an integer setting.
struct Limits {
  std::int64_t min = 0, max = 0;
  // The kernel wants a power-of-two number of pages for a ring buffer; below 4 KiB a single
  // event barely fits.
  bool power_of_two = false;
  std::string_view unit = {};  // " seconds (0 = only after dropped events)": after the range

  std::string text() const {
    if (power_of_two) return fmt::format("a power of two from {} to {}", min, max);
    return fmt::format("{}..{}{}", min, max, unit);
  }
  bool allows(std::int64_t v) const {
    return v >= min && v <= max && (!power_of_two || (v & (v - 1)) == 0);
  }
};

constexpr Limits kRingBufferKb{capture::kMinRingBufferKb, capture::kMaxRingBufferKb, true};

template <typename T>
constexpr bool kIsInteger =
    std::is_same_v<T, std::chrono::seconds> || std::is_same_v<T, std::chrono::milliseconds> ||
    std::is_same_v<T, std::uint32_t> || std::is_same_v<T, int>;

template <typename T>
std::string type_name() {
  if constexpr (kIsInteger<T>)
    return "integer";
  else if constexpr (std::is_same_v<T, bool>)
    return "boolean";
  else if constexpr (std::is_same_v<T, std::vector<std::string>>)
    return "array of strings";
  else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>)
    return "table of strings";
  else
    return "string";
}

Error wrong_type(std::string_view origin, std::string_view key, const toml::node& node) {
  return make_error("{}: '{}' has the wrong type (line {})", origin, key, node.source().begin.line);
}

// One value of type T from its TOML node, within `limits` for integers.
template <typename T>
Result<T> read_as(const toml::node& node, std::string_view key, std::string_view origin,
                  const Limits& limits) {
  if constexpr (kIsInteger<T>) {
    auto v = node.value<std::int64_t>();
    if (!v) return wrong_type(origin, key, node);
    if (!limits.allows(*v))
      return make_error("{}: '{}' must be {}, not {}", origin, key, limits.text(), *v);
    if constexpr (std::is_arithmetic_v<T>)
      return static_cast<T>(*v);
    else
      return T(*v);
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    const toml::array* arr = node.as_array();
    if (!arr) return make_error("{}: '{}' must be an array of strings", origin, key);
    T out;
    for (const auto& item : *arr) {
      auto s = item.template value<std::string>();
      if (!s) return make_error("{}: '{}' must contain only strings", origin, key);
      out.push_back(*s);
    }
    return out;
  } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
    const toml::table* table = node.as_table();
    if (!table)
      return make_error("{}: '{}' must be a table: [{}] node = \"IP:PORT\"", origin, key, key);
    T out;
    for (const auto& [name, value] : *table) {
      auto s = value.template value<std::string>();
      if (!s)
        return make_error("{}: '{}.{}' must be a string \"IP:PORT\"", origin, key, name.str());
      out[std::string(name.str())] = *s;
    }
    return out;
  } else if constexpr (std::is_same_v<T, capture::Mode> || std::is_same_v<T, capture::LockHook>) {
    auto text = node.value<std::string>();
    if (!text) return wrong_type(origin, key, node);
    Result<T> parsed = [&]() -> Result<T> {
      if constexpr (std::is_same_v<T, capture::Mode>)
        return capture::mode_from_string(*text);
      else
        return capture::lock_hook_from_string(*text);
    }();
    if (!parsed) return make_error("{}: '{}': {}", origin, key, parsed.error().message);
    return *parsed;
  } else {
    auto v = node.value<T>();
    if (!v) return wrong_type(origin, key, node);
    return *v;
  }
}

// What the table knows of each setting, type-erased.
struct Setting {
  std::string key;
  Takes takes;
  std::string type;
  std::string range;
  // Reads the key's node into the config; null for rows that are not keys of the file (the
  // [health] section's presence, the built-in check's address).
  std::function<Result<void>(const toml::node&, Config&, std::string_view origin)> read;
  // A check of the value alone, after reading (defaults included); null: none beyond the range.
  std::function<Result<void>(const Config&)> check;
  std::function<bool(const Config&, const Config&)> same;
  std::function<void(const Config& from, Config& to)> copy;
  std::function<std::string(const Config&)> shown;
};

template <typename T>
using Member = T& (*)(Config&);
template <typename T>
using Check = Result<void> (*)(const T&);

template <typename T>
Setting setting(std::string key, Takes takes, Member<T> get, Limits limits = {},
                Check<T> check = nullptr) {
  auto at = [get](const Config& c) -> const T& { return get(const_cast<Config&>(c)); };
  Setting s{key,
            takes,
            type_name<T>(),
            kIsInteger<T> ? limits.text() : std::string(),
            [get, key, limits](const toml::node& node, Config& c, std::string_view origin) {
              auto v = read_as<T>(node, key, origin, limits);
              if (!v) return Result<void>(v.error());
              get(c) = std::move(*v);
              return Result<void>();
            },
            nullptr,
            [at](const Config& a, const Config& b) { return at(a) == at(b); },
            [get, at](const Config& from, Config& to) { get(to) = at(from); },
            [at](const Config& c) { return show(at(c)); }};
  if (check) s.check = [check, at](const Config& c) { return check(at(c)); };
  return s;
}

// A row that is not a key of the file: it is derived from other keys, but a reload still has to
// say that its change needs a restart.
template <typename T>
Setting derived(std::string key, Takes takes, Member<T> get) {
  Setting s = setting<T>(std::move(key), takes, get);
  s.read = nullptr;
  s.type = "derived";
  return s;
}

#define LF_MEMBER(member) \
  [](Config & c) -> auto& { return c.member; }

bool is_absolute_path(const std::string& p) { return !p.empty() && p[0] == '/'; }

Result<void> absolute(std::string_view key, const std::string& path) {
  if (!is_absolute_path(path)) return make_error("'{}' must be an absolute path", key);
  return {};
}

// Value checks (the key's own value, nothing else): messages name the key.
Result<void> check_log_level(const std::string& level) {
  static const std::set<std::string> levels{"trace", "debug",    "info", "warn",
                                            "error", "critical", "off"};
  if (!levels.count(level))
    return make_error("'log_level' = \"{}\" is not one of trace, debug, info, warn, error", level);
  return {};
}
Result<void> check_monitor_dirs(const std::vector<std::string>& dirs) {
  if (dirs.empty())
    return make_error(
        "'capture.monitor_dirs' is empty: name statd's monitor directory, usually "
        "/var/lib/nfs/sm");
  for (const auto& d : dirs)
    if (!is_absolute_path(d))
      return make_error("monitor directory \"{}\" must be an absolute path", d);
  return {};
}
Result<void> check_socket(const std::string& p) { return absolute("control.socket", p); }
Result<void> check_statmon_dir(const std::string& p) { return absolute("failover.statmon_dir", p); }
Result<void> check_recognize(const std::string& method) {
  if (auto m = failover::recognize_method_from_string(method); !m)
    return make_error("'failover.recognize': {}", m.error().message);
  return {};
}
Result<void> check_managers(const std::vector<std::string>& names) {
  if (auto r = capture::check_manager_names(names); !r)
    return make_error("'locks.managers': {}", r.error().message);
  return {};
}
Result<void> check_manager_binaries(const std::vector<std::string>& binaries) {
  for (const auto& b : binaries)
    if (!is_absolute_path(b))
      return make_error("'locks.manager_binaries': \"{}\" must be an absolute path", b);
  return {};
}
Result<void> check_metrics_listen(const std::string& listen) {
  if (listen.empty()) return {};
  if (auto r = parse_listen_address(listen); !r)
    return make_error("'metrics.listen': {}", r.error().message);
  return {};
}

// The one table. Live settings are applied by Daemon::reload (monitor directories, lock
// managers, log level, reconcile interval) or read from the running configuration when they are
// used (failover settings: by migrations through the socket and by automatic adoption alike).
// Restart ones are owned by something started once: the store and node (every record names
// them), the BPF programs and their ring buffers, the control socket, the health agent's sockets
// and timers, the metrics listener.
const std::vector<Setting>& table() {
  static const std::vector<Setting> rows = [] {
    using enum Takes;
    using std::chrono::seconds;
    using health::Millis;
    using Strings = std::vector<std::string>;
    return std::vector<Setting>{
        setting<std::string>("node", restart, LF_MEMBER(node)),
        setting<std::string>("store", restart, LF_MEMBER(store_url)),
        setting<std::string>("log_level", live, LF_MEMBER(log_level), {}, check_log_level),
        setting<Strings>("capture.monitor_dirs", live, LF_MEMBER(monitor_dirs), {},
                         check_monitor_dirs),
        setting<capture::Mode>("capture.mode", restart, LF_MEMBER(capture_mode)),
        setting<seconds>("capture.reconcile_interval_s", live, LF_MEMBER(reconcile_interval),
                         {1, 86400, false, " seconds"}),
        setting<std::string>("capture.pin_dir", restart, LF_MEMBER(pin_dir)),
        setting<std::uint32_t>("capture.ring_buffer_kb", restart, LF_MEMBER(ring_buffer_kb),
                               kRingBufferKb),
        setting<std::string>("control.socket", restart, LF_MEMBER(socket_path), {}, check_socket),
        setting<std::string>("failover.statmon_dir", live, LF_MEMBER(statmon_dir), {},
                             check_statmon_dir),
        setting<std::string>("failover.service_ip", live, LF_MEMBER(service_ip)),
        setting<std::string>("failover.recognize", live, LF_MEMBER(recognize), {}, check_recognize),
        setting<Strings>("failover.recognize_command", live, LF_MEMBER(recognize_command)),
        setting<seconds>("failover.recognize_timeout_s", live, LF_MEMBER(recognize_timeout),
                         {1, 3600}),
        setting<bool>("failover.automatic", live, LF_MEMBER(automatic)),
        setting<Strings>("failover.adopt_order", live, LF_MEMBER(adopt_order)),
        setting<Strings>("failover.takeover_command", live, LF_MEMBER(takeover_command)),
        setting<seconds>("failover.takeover_timeout_s", live, LF_MEMBER(takeover_timeout),
                         {1, 3600}),
        setting<seconds>("failover.audit_after_s", live, LF_MEMBER(audit_after), {1, 3600}),
        derived<bool>("health", restart, LF_MEMBER(health.enabled)),  // the section's presence
        setting<bool>("health.heartbeats", restart, LF_MEMBER(health.heartbeats)),
        setting<std::string>("health.listen", restart, LF_MEMBER(health.listen)),
        setting<std::map<std::string, std::string>>("health.peers", restart,
                                                    LF_MEMBER(health.peers)),
        setting<std::string>("health.key_file", restart, LF_MEMBER(health.key_file)),
        setting<Millis>("health.interval_ms", restart, LF_MEMBER(health.interval), {50, 60000}),
        setting<Millis>("health.dead_after_ms", restart, LF_MEMBER(health.dead_after),
                        {100, 600000}),
        setting<Millis>("health.replay_window_ms", restart, LF_MEMBER(health.replay_window),
                        {50, 600000}),
        setting<Strings>("health.check_command", restart, LF_MEMBER(health.check_command)),
        setting<Millis>("health.check_interval_ms", restart, LF_MEMBER(health.check_interval),
                        {100, 3600000}),
        setting<Millis>("health.check_timeout_ms", restart, LF_MEMBER(health.check_timeout),
                        {100, 3600000}),
        setting<int>("health.check_failures", restart, LF_MEMBER(health.check_failures), {1, 100}),
        // The built-in check's address (failover.service_ip, when there is no check_command).
        derived<std::string>("health (service_ip)", restart, LF_MEMBER(health.service_ip)),
        setting<bool>("locks.enabled", restart, LF_MEMBER(locks_enabled)),
        setting<Strings>("locks.managers", live, LF_MEMBER(lock_managers), {}, check_managers),
        setting<Strings>("locks.manager_binaries", live, LF_MEMBER(lock_manager_binaries), {},
                         check_manager_binaries),
        setting<capture::LockHook>("locks.hook", restart, LF_MEMBER(lock_hook)),
        setting<std::uint32_t>("locks.ring_buffer_kb", restart, LF_MEMBER(lock_ring_buffer_kb),
                               kRingBufferKb),
        // Unlike [capture], 0 is allowed: the lock table is then reconciled only after dropped
        // events.
        setting<seconds>("locks.reconcile_interval_s", restart, LF_MEMBER(lock_reconcile_interval),
                         {0, 86400, false, " seconds (0 = only after dropped events)"}),
        setting<std::string>("metrics.listen", restart, LF_MEMBER(metrics_listen), {},
                             check_metrics_listen),
    };
  }();
  return rows;
}

#undef LF_MEMBER

// "capture.mode" -> {"capture", "mode"}; "node" -> {"", "node"}.
std::pair<std::string_view, std::string_view> split_key(std::string_view key) {
  const auto dot = key.find('.');
  if (dot == std::string_view::npos) return {{}, key};
  return {key.substr(0, dot), key.substr(dot + 1)};
}

// The keys of the file the table knows, by section ("" = the top level, which also allows the
// sections themselves).
std::map<std::string, std::set<std::string>, std::less<>> keys_by_section() {
  std::map<std::string, std::set<std::string>, std::less<>> keys;
  keys[""];
  for (const auto& s : table()) {
    if (!s.read) continue;
    const auto [section, name] = split_key(s.key);
    keys[std::string(section)].insert(std::string(name));
    if (!section.empty()) keys[""].insert(std::string(section));
  }
  keys[""].insert("health");  // a section even when every key in it is left out
  return keys;
}

Result<void> check_keys(const toml::table& table, std::string_view section,
                        const std::set<std::string>& allowed, std::string_view origin) {
  for (const auto& [key, value] : table) {
    if (!allowed.count(std::string(key.str())))
      return make_error("{}: unknown key '{}{}{}' (allowed: {})", origin, section,
                        section.empty() ? "" : ".", key.str(), fmt::join(allowed, ", "));
  }
  return {};
}

}  // namespace

std::vector<SettingInfo> settings_table() {
  const Config defaults;
  std::vector<SettingInfo> out;
  for (const auto& s : table()) out.push_back({s.key, s.takes, s.type, s.shown(defaults), s.range});
  return out;
}

std::string_view health_key(health::Option option) {
  using health::Option;
  switch (option) {
    case Option::interval:
      return "health.interval_ms";
    case Option::dead_after:
      return "health.dead_after_ms";
    case Option::replay_window:
      return "health.replay_window_ms";
    case Option::check_interval:
      return "health.check_interval_ms";
    case Option::check_timeout:
      return "health.check_timeout_ms";
    case Option::check_failures:
      return "health.check_failures";
    case Option::listen:
      return "health.listen";
    case Option::key_file:
      return "health.key_file";
    case Option::peers:
      return "health.peers";
    case Option::node:
      return "node";
  }
  return "health";
}

Result<void> read_settings(std::string_view toml_text, std::string_view origin, Config& cfg) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    return make_error("{}:{}:{}: {}", origin, e.source().begin.line, e.source().begin.column,
                      e.description());
  }
  const auto keys = keys_by_section();
  if (auto r = check_keys(root, "", keys.at(""), origin); !r) return r;
  for (const auto& [section, allowed] : keys) {
    if (section.empty() || !root.contains(section)) continue;
    const toml::table* t = root[section].as_table();
    if (!t) return make_error("{}: '{}' must be a table ([{}])", origin, section, section);
    if (auto r = check_keys(*t, section, allowed, origin); !r) return r;
  }
  cfg.health.enabled = root["health"].is_table();
  for (const auto& s : table()) {
    if (!s.read) continue;
    const auto [section, name] = split_key(s.key);
    const toml::table* in = section.empty() ? &root : root[section].as_table();
    const toml::node* node = in ? in->get(name) : nullptr;
    if (node == nullptr) continue;
    if (auto r = s.read(*node, cfg, origin); !r) return r;
  }
  return {};
}

Result<void> check_settings(const Config& cfg) {
  for (const auto& s : table())
    if (s.check)
      if (auto r = s.check(cfg); !r) return r;
  return {};
}

std::vector<SettingChange> setting_changes(const Config& running, const Config& file) {
  std::vector<SettingChange> out;
  for (const auto& s : table())
    if (!s.same(running, file)) out.push_back({s.key, s.takes, s.shown(running), s.shown(file)});
  return out;
}

void keep_restart_settings(const Config& running, Config& file) {
  for (const auto& s : table())
    if (s.takes == Takes::restart) s.copy(running, file);
}

}  // namespace lockferry::daemon
