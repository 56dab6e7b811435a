// SPDX-License-Identifier: Apache-2.0
// What the notifier did for one client: a plain value for migrate's JSON, the audit and the
// per-client failover report.
#pragma once

#include <cstdint>
#include <string>

namespace lockferry::notify {

enum class ClientStatus {
  acknowledged,  // its statd answered SM_NOTIFY: it knows, and reclaims
  notified,      // SM_NOTIFY was sent (its rpcbind answered) but no answer came by the deadline
  unreachable,   // its address did not resolve, or its rpcbind gave no statd port by the deadline
};
const char* to_string(ClientStatus status);

struct ClientResult {
  std::string client;   // the record's file name in sm/ (the name sm-notify looks up too)
  std::string address;  // the IPv4 address notified; empty when the name did not resolve
  ClientStatus status = ClientStatus::unreachable;
  std::uint16_t statd_port = 0;      // from the client's rpcbind
  int attempts = 0;                  // SM_NOTIFY datagrams sent
  std::int64_t notified_ns = 0;      // first SM_NOTIFY sent (wall clock), 0 if none
  std::int64_t acknowledged_ns = 0;  // its answer, 0 if none
  std::string error;                 // why it is not acknowledged
};

}  // namespace lockferry::notify
