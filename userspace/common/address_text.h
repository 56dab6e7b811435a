// SPDX-License-Identifier: Apache-2.0
// IP addresses as text: from the kernel's struct sockaddr bytes (lock capture: which client,
// through which service IP), and compared regardless of spelling (migrate --service-ip).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lockferry::net {

// A kernel struct sockaddr_in / sockaddr_in6 (`len` bytes: family in host order, then port and
// address in network order) as "192.0.2.10" / "2001:db8::1"; an IPv4-mapped IPv6 address as its
// IPv4 address (what clients and statd use); "" for family 0 (unknown) or any other family.
std::string sockaddr_text(const std::uint8_t* sa, std::size_t len);

// Whether two textual IP addresses name the same address ("2001:db8::1" == "2001:DB8:0::1");
// text that is no address compares as text.
bool same_address(std::string_view a, std::string_view b);

}  // namespace lockferry::net
