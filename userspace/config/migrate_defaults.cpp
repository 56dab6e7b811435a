// SPDX-License-Identifier: Apache-2.0
// The configuration's migration settings as migrate options; see migrate_defaults.h.
#include "config/migrate_defaults.h"

#include "failover/recognizer.h"

namespace lockferry::daemon {

Result<failover::MigrateOptions> migrate_defaults(const Config& config) {
  failover::MigrateOptions o;
  o.to_node = config.node;
  o.statmon_dir = config.statmon_dir;
  o.recognize.service_ip = config.service_ip;
  auto method = failover::recognize_method_from_string(config.recognize);
  if (!method) return method.error();
  o.recognize.method = *method;
  o.recognize.command = config.recognize_command;
  o.recognize.timeout = config.recognize_timeout;
  return o;
}

}  // namespace lockferry::daemon
