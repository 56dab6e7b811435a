// SPDX-License-Identifier: Apache-2.0
// Dropping the capabilities lockferryd no longer needs once its BPF programs are loaded, attached
// and pinned, so a bug in record parsing or the control socket cannot be turned into full root.
#pragma once

#include <string>
#include <vector>

#include "lockferry/result.h"

namespace lockferry::daemon {

struct KeptCapability {
  std::string name;  // e.g. "cap_dac_override"
  std::string why;   // logged, so an operator can audit the choice
};

// The capabilities a running lockferryd still needs, each with the reason.
std::vector<KeptCapability> capabilities_to_keep();

// Reduces the effective and permitted sets to `keep`. The bounding set is left alone on purpose:
// commands the daemon runs as root (sm-notify, systemctl, hooks) get root's usual capabilities at
// exec, as they would from any cluster manager; lockferryd itself cannot regain the dropped ones.
Result<void> drop_capabilities(const std::vector<KeptCapability>& keep);

}  // namespace lockferry::daemon
