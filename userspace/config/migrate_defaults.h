// SPDX-License-Identifier: Apache-2.0
// The migration settings of the configuration ([failover], node) as the options a migration
// starts from: `lockferry migrate` and a control-socket migrate request override some of them, an
// automatic adoption takes them as they are.
#pragma once

#include <string>

#include "config/config.h"
#include "failover/migration.h"

namespace lockferry::daemon {

// Options adopting no node yet (from_node is empty): this node, its statd directory, service IP
// and recognition. Fails when failover.recognize names no method.
Result<failover::MigrateOptions> migrate_defaults(const Config& config);

}  // namespace lockferry::daemon
