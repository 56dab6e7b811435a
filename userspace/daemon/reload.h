// SPDX-License-Identifier: Apache-2.0
// What a SIGHUP reload does with each setting (the settings table says whether a change takes
// effect in the running daemon or only after a restart): the difference between the running
// configuration and the file, and the report `lockferry status` shows. A setting that needs a
// restart keeps its running value - and says so, in the log and in status - until lockferryd
// restarts; nothing is silently ignored.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/settings.h"

namespace lockferry::daemon {

struct ConfigDiff {
  std::vector<std::string> live;  // keys whose new values the reload applies
  // "key: running VALUE, file VALUE" for each change that needs a restart.
  std::vector<std::string> restart;
  bool empty() const { return live.empty() && restart.empty(); }
};

// The settings of `file` that differ from `running`.
ConfigDiff diff_config(const Config& running, const Config& file);

// `file` with every setting that needs a restart set back to its value in `running`: what the
// daemon runs with after the reload (so status never shows a value that is not in effect).
Config running_after_reload(const Config& running, Config file);

// The outcome of the last SIGHUP, for the log and `lockferry status` ("reload").
struct ReloadReport {
  std::int64_t at_ns = 0;   // 0: never reloaded
  std::uint64_t count = 0;  // reloads since start: tells two reloads in one millisecond apart
  bool ok = true;
  std::string error;                       // why the file was not taken (nothing applied)
  std::vector<std::string> applied;        // keys changed by the last reload
  std::vector<std::string> needs_restart;  // changes in the file still waiting for a restart
  nlohmann::json to_json() const;
};

}  // namespace lockferry::daemon
