// SPDX-License-Identifier: Apache-2.0
// IP:PORT as the health agent and /metrics read it: one set of rules for both.
#include "common/ip_port.h"

#include <gtest/gtest.h>

namespace lockferry::net {
namespace {

TEST(IpPort, ReadsIpv4AndBracketedIpv6) {
  auto v4 = parse_ip_port("192.0.2.11:7789");
  ASSERT_TRUE(v4.ok()) << v4.error().message;
  EXPECT_EQ(v4->address.to_string(), "192.0.2.11");
  EXPECT_EQ(v4->port, 7789);
  auto v6 = parse_ip_port("[2001:db8::11]:0");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_TRUE(v6->address.is_v6());
  EXPECT_EQ(v6->address.to_string(), "2001:db8::11");
  EXPECT_EQ(v6->port, 0);
  auto top = parse_ip_port("[::1]:65535");
  ASSERT_TRUE(top.ok()) << top.error().message;
  EXPECT_EQ(top->port, 65535);
}

TEST(IpPort, RefusesWhatCouldBeReadTwoWaysOrNeedsALookup) {
  for (const char* bad :
       {"", "7789", ":7789", "192.0.2.11:", "192.0.2.11:65536", "192.0.2.11:77x", "192.0.2.11: 7",
        "192.0.2.11:+7", "192.0.2.11:-1", "2001:db8::1:7789", "[2001:db8::1:7789", "[]:7789",
        "2001:db8::1]:7789", "nodeb.example:7789", "localhost:7789", "[192.0.2.11]x:1"}) {
    EXPECT_FALSE(parse_ip_port(bad).ok()) << "accepted '" << bad << "'";
  }
}

}  // namespace
}  // namespace lockferry::net
