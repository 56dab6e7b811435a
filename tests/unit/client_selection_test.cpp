// SPDX-License-Identifier: Apache-2.0
// migrate --service-ip: which clients of a node with two service IPs are replayed, and the
// address text the lock capture makes of kernel lockd's nlm_host addresses.
#include "failover/client_selection.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/address_text.h"

namespace lockferry::failover {
namespace {

MonitorRecord monitored(const std::string& mon_name) {
  MonitorRecord r;
  r.node = "nfs1";
  r.mon_name = mon_name;
  r.file_name = mon_name;
  return r;
}
LockRecord lock_via(const std::string& client_addr, const std::string& name,
                    const std::string& server_addr) {
  LockRecord l;
  l.node = "nfs1";
  l.type = "write";
  l.client_addr = client_addr;
  l.nlm_host = name;
  l.server_addr = server_addr;
  return l;
}
std::vector<std::string> names(const std::vector<MonitorRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.mon_name);
  return out;
}

TEST(ClientSelection, OnlyClientsThatLockedThroughOtherAddressesOnlyAreLeftOut) {
  const std::vector<MonitorRecord> records{
      monitored("10.77.1.2"),  // locked through .10 (monitored by address, named "client1")
      monitored("10.77.2.2"),  // through .11 only
      monitored("10.77.3.2"),  // through both
      monitored("client4"),    // through .11, monitored by name (nsm_use_hostnames)
      monitored("10.77.5.2"),  // no lock recorded (all released, or never seen)
      monitored("10.77.6.2"),  // a lock without an address (Ganesha, or found by a reconcile)
  };
  const std::vector<LockRecord> locks{
      lock_via("10.77.1.2", "client1", "192.0.2.10"),
      lock_via("10.77.2.2", "client2", "192.0.2.11"),
      lock_via("10.77.3.2", "client3", "192.0.2.11"),
      lock_via("10.77.3.2", "client3", "192.0.2.10"),
      lock_via("10.77.4.2", "client4", "192.0.2.11"),
      lock_via("", "10.77.6.2", ""),
  };
  auto picked = select_clients(records, locks, "192.0.2.10");
  EXPECT_EQ(names(picked.replay),
            (std::vector<std::string>{"10.77.1.2", "10.77.3.2", "10.77.5.2", "10.77.6.2"}));
  EXPECT_EQ(picked.left_out, (std::vector<std::string>{"10.77.2.2", "client4"}));
  picked = select_clients(records, locks, "192.0.2.11");
  EXPECT_EQ(names(picked.replay), (std::vector<std::string>{"10.77.2.2", "10.77.3.2", "client4",
                                                            "10.77.5.2", "10.77.6.2"}));
  EXPECT_EQ(picked.left_out, (std::vector<std::string>{"10.77.1.2"}));
}

TEST(ClientSelection, AddressesCompareRegardlessOfSpelling) {
  const std::vector<MonitorRecord> records{monitored("2001:db8::7")};
  const std::vector<LockRecord> locks{lock_via("2001:db8::7", "c", "2001:db8:0:0::10")};
  EXPECT_EQ(select_clients(records, locks, "2001:DB8::10").replay.size(), 1u);
  EXPECT_EQ(select_clients(records, locks, "2001:db8::11").left_out.size(), 1u);
  EXPECT_TRUE(net::same_address("192.0.2.10", "192.0.2.10"));
  EXPECT_FALSE(net::same_address("192.0.2.10", "192.0.2.1"));
  EXPECT_FALSE(net::same_address("host", "192.0.2.10"));
}

TEST(AddressText, KernelSockaddrsAsText) {
  std::uint8_t sa[28] = {};
  EXPECT_EQ(net::sockaddr_text(sa, sizeof(sa)), "") << "family 0: unknown";
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(2049);
  ::inet_pton(AF_INET, "192.0.2.10", &in.sin_addr);
  std::memcpy(sa, &in, sizeof(in));
  EXPECT_EQ(net::sockaddr_text(sa, sizeof(sa)), "192.0.2.10");
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  ::inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
  std::memcpy(sa, &in6, sizeof(in6));
  EXPECT_EQ(net::sockaddr_text(sa, sizeof(sa)), "2001:db8::1");
  ::inet_pton(AF_INET6, "::ffff:198.51.100.7", &in6.sin6_addr);
  std::memcpy(sa, &in6, sizeof(in6));
  EXPECT_EQ(net::sockaddr_text(sa, sizeof(sa)), "198.51.100.7");
  const std::uint16_t unix_family = AF_UNIX;
  std::memcpy(sa, &unix_family, sizeof(unix_family));
  EXPECT_EQ(net::sockaddr_text(sa, sizeof(sa)), "");
}

}  // namespace
}  // namespace lockferry::failover
