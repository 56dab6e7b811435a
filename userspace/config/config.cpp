// SPDX-License-Identifier: Apache-2.0
// TOML configuration of lockferryd; see config.h.
#include "config/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/settings.h"
#include "statmon/record.h"

namespace lockferry::daemon {
namespace {

std::string default_node_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "";
  return host;
}

// A health option's error, with the keys it is about.
std::string health_message(const health::OptionError& e) {
  std::string key(health_key(e.option));
  if (!e.peer.empty()) key += "." + e.peer;
  if (e.option == health::Option::node) return fmt::format("node name {}", e.problem);
  return fmt::format("'{}' {}{}", key, e.problem,
                     e.compared_to
                         ? fmt::format(" (the {} is '{}')", health::describe(*e.compared_to),
                                       health_key(*e.compared_to))
                         : std::string());
}

// The rules that involve more than one key, after every key's own check.
Result<void> check_across_keys(Config& cfg) {
  if (cfg.node.empty()) return make_error("'node' is empty and the host name is unknown");
  if (auto r = statmon::check_file_name(cfg.node); !r)
    return make_error("'node' = \"{}\" cannot be a node name: {}", cfg.node, r.error().message);
  if (auto r = check_settings(cfg); !r) return r;
  cfg.health.service_ip = cfg.service_ip;  // the built-in check when there is no check_command
  if (auto e = health::check_options(cfg.health, cfg.node))
    return make_error("{}", health_message(*e));
  if (cfg.automatic && !cfg.health.enabled)
    return make_error(
        "'failover.automatic' needs a [health] section: who would declare a node "
        "down? (heartbeats, or `lockferry health set-down` from your cluster manager)");
  return {};
}

}  // namespace

Result<Config> parse_config(std::string_view toml_text, std::string_view origin,
                            const Overrides& overrides) {
  Config cfg;
  cfg.node = default_node_name();
  if (auto r = read_settings(toml_text, origin, cfg); !r) return r.error();
  if (!overrides.node.empty()) cfg.node = overrides.node;
  if (auto r = check_across_keys(cfg); !r) return make_error("{}: {}", origin, r.error().message);
  return cfg;
}

Result<Config> load_config(const std::string& path, const Overrides& overrides) {
  std::ifstream in(path);
  if (!in) return make_errno_error(errno, "cannot read config file {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path, overrides);
}

std::string lock_owner_key_path(const Config& config) {
  const std::filesystem::path socket(config.socket_path);
  const auto dir = socket.has_parent_path() ? socket.parent_path() : std::filesystem::path(".");
  return (dir / "lock-owner-key").string();
}

}  // namespace lockferry::daemon
