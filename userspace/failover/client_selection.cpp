// SPDX-License-Identifier: Apache-2.0
// Monitor records of the clients that locked through one service IP; see client_selection.h.
#include "failover/client_selection.h"

#include <map>

#include "common/address_text.h"

namespace lockferry::failover {

ClientSelection select_clients(const std::vector<MonitorRecord>& records,
                               const std::vector<LockRecord>& locks, std::string_view service_ip) {
  // Per client name or address: did it lock through service_ip, through another address?
  struct Seen {
    bool here = false;
    bool elsewhere = false;
  };
  std::map<std::string, Seen, std::less<>> by_client;
  for (const auto& l : locks) {
    if (l.server_addr.empty()) continue;
    const bool here = net::same_address(l.server_addr, service_ip);
    for (const std::string* who : {&l.client_addr, &l.nlm_host}) {
      if (who->empty()) continue;
      Seen& s = by_client[*who];
      (here ? s.here : s.elsewhere) = true;
    }
  }
  ClientSelection out;
  for (const auto& r : records) {
    const auto it = by_client.find(r.mon_name);
    if (it != by_client.end() && !it->second.here)
      out.left_out.push_back(r.mon_name);
    else
      out.replay.push_back(r);
  }
  return out;
}

}  // namespace lockferry::failover
