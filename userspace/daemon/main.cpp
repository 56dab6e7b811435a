// SPDX-License-Identifier: Apache-2.0
// lockferryd: captures statd monitor records on this NFS server into shared storage.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "common/log.h"
#include "config/config.h"
#include "config/settings.h"
#include "daemon/daemon.h"
#include "daemon/limits.h"

int main(int argc, char** argv) {
  using namespace lockferry;
  CLI::App app{
      "lockferryd - keeps NFSv3 lock state alive across NFS server failover.\n\n"
      "Watches rpc.statd's monitor directory (eBPF syscall tracepoints; fanotify or inotify when\n"
      "BPF is unavailable), records every monitor record in the shared store, reconciles the\n"
      "directory with the store periodically, and answers `lockferry` on a root-only control\n"
      "socket. SIGTERM/SIGINT stop it cleanly; SIGHUP reloads the watched directories.",
      "lockferryd"};
  std::string config_path = daemon::kDefaultConfigPath;
  bool check_only = false;
  bool list_settings = false;
  bool verbose = false;
  std::string node_override;
  app.add_option("-c,--config", config_path, "configuration file (TOML)")->capture_default_str();
  app.add_option("--node", node_override, "this node's name (overrides 'node' in the config)");
  app.add_flag("--check-config", check_only, "validate the configuration, print it, and exit");
  app.add_flag("--list-settings", list_settings,
               "print every configuration key (type, default, range, whether SIGHUP applies it) "
               "and exit");
  app.add_flag("-v,--verbose", verbose, "debug logging, including libbpf's own messages");
  app.set_version_flag("--version", std::string("lockferryd ") + LOCKFERRY_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (list_settings) {
    fmt::print("{:<30} {:<17} {:<8} {:<32} {}\n", "KEY", "TYPE", "SIGHUP", "RANGE", "DEFAULT");
    for (const auto& s : daemon::settings_table())
      fmt::print("{:<30} {:<17} {:<8} {:<32} {}\n", s.key, s.type,
                 s.takes == daemon::Takes::live ? "applies" : "restart",
                 s.range.empty() ? "-" : s.range, s.default_value);
    return 0;
  }
  log::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");  // every message escaped for display
  // The same parse, override and validation as every SIGHUP (Daemon::reload).
  const daemon::Overrides overrides{node_override};
  auto config = daemon::load_config(config_path, overrides);
  if (!config) {
    spdlog::critical("{}", config.error().message);
    return 2;
  }
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::from_str(config->log_level));
  if (check_only) {
    fmt::print("config {} is valid: node {}, store {}, monitor dirs {}, capture mode {}\n",
               config_path, config->node, config->store_url, fmt::join(config->monitor_dirs, ", "),
               capture::to_string(config->capture_mode));
    return 0;
  }
  if (::geteuid() != 0) {
    spdlog::critical(
        "lockferryd must run as root: it loads eBPF programs, reads statd's monitor "
        "directory and serves a root-only control socket");
    return 1;
  }
  if (auto files = daemon::raise_open_file_limit(); !files) {
    spdlog::warn("cannot raise the open-file limit: {}", files.error().message);
  } else if (files->soft != files->before) {
    spdlog::info("open-file limit raised from {} to {} (the hard limit)", files->before,
                 files->soft);
  } else {
    spdlog::info("open-file limit is {} (the hard limit)", files->soft);
  }
  daemon::Daemon d(std::move(*config), config_path, overrides);
  return d.run();
}
