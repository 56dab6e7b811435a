// SPDX-License-Identifier: Apache-2.0
// Every key of lockferryd's configuration file, defined once: its TOML key, type, default,
// allowed range and whether a SIGHUP reload can change it. The file is read through this table
// (config.cpp), a reload's difference is computed from it (reload.cpp), and no library knows a
// key's spelling: the health library's typed errors are mapped to keys here.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "health/agent.h"

namespace lockferry::daemon {

enum class Takes {
  live,     // applied by the reload
  restart,  // keeps its running value until lockferryd restarts
};

// One row of the table, as others may read it.
struct SettingInfo {
  std::string key;  // "failover.automatic", "health.interval_ms", ...
  Takes takes;
  std::string type;           // "string", "integer", "array of strings", ...
  std::string default_value;  // as `lockferryd --check-config` and a reload report show values
  std::string range;          // "1..86400", "a power of two from 4 to 262144"; "" = any
};
std::vector<SettingInfo> settings_table();

// The configuration key of a health option ("health.interval_ms").
std::string_view health_key(health::Option option);

// Reads every key of the TOML text into `cfg` (which holds the defaults): unknown keys, values
// of the wrong type and integers out of their range are errors naming `origin` and the key.
Result<void> read_settings(std::string_view toml_text, std::string_view origin, Config& cfg);

// Each setting's check of its own value (absolute paths, known names, a valid address...);
// cross-key rules are config.cpp's. Errors name the key, not the file.
Result<void> check_settings(const Config& cfg);

// A setting whose value differs between two configurations.
struct SettingChange {
  std::string key;
  Takes takes;
  std::string running, file;  // the values as shown
};
std::vector<SettingChange> setting_changes(const Config& running, const Config& file);

// Sets every setting that needs a restart in `file` back to its value in `running`.
void keep_restart_settings(const Config& running, Config& file);

}  // namespace lockferry::daemon
