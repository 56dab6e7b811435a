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
  // Kept only in the permitted set, for the commands lockferryd runs (sm-notify binds a reserved
  // port and switches to statd's user); lockferryd itself never raises it.
  bool for_commands_only = false;
};

// The capabilities a running lockferryd still needs, each with the reason.
std::vector<KeptCapability> capabilities_to_keep();

// Reduces the permitted set to `keep` and the effective set to those not `for_commands_only`.
// Commands lockferryd runs stay root, and a root program's exec gives it its permitted set as
// effective — but under no_new_privs (systemd's NoNewPrivileges=, setpriv --no-new-privs) never
// more than lockferryd's own permitted set: whatever a recognition command needs must stay there.
// Ambient capabilities would not help: they only matter for non-root programs.
Result<void> drop_capabilities(const std::vector<KeptCapability>& keep);

}  // namespace lockferry::daemon
