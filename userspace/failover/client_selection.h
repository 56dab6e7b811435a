// SPDX-License-Identifier: Apache-2.0
// Which of a node's monitor records a migration of one service IP replays (`lockferry migrate
// --service-ip IP`): a node serving several service IPs fails over one of them, and only the
// clients that locked through that address are to be told.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lockferry/records.h"

namespace lockferry::failover {

struct ClientSelection {
  std::vector<MonitorRecord> replay;
  std::vector<std::string> left_out;  // mon_names of clients that locked only through others
};

// A client (monitor record) is replayed unless the lock table shows it locked through other
// server addresses only. A lock is the client's when its NLM client address or name
// (LockRecord::client_addr, nlm_host) is the record's mon_name (kernel lockd monitors a client by
// its address unless nsm_use_hostnames is set, then by its name). A client with no lock of known
// address (none recorded, all released, NFS-Ganesha, or a lock only a reconcile found) is
// replayed: notifying a client that holds nothing through `service_ip` costs one ignored
// SM_NOTIFY, leaving out one that does loses its locks.
ClientSelection select_clients(const std::vector<MonitorRecord>& records,
                               const std::vector<LockRecord>& locks, std::string_view service_ip);

}  // namespace lockferry::failover
