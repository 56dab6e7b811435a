// SPDX-License-Identifier: Apache-2.0
// "IP:PORT" as configured for the health agent's peers and listen address and for /metrics:
// one parser, so both accept the same spellings.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <string_view>

#include "lockferry/result.h"

namespace lockferry::net {

struct IpPort {
  boost::asio::ip::address address;
  std::uint16_t port = 0;
};

// "192.0.2.11:7789" or "[2001:db8::11]:7789". An IPv6 address needs its brackets (without them
// "2001:db8::1:7789" could be either a port or part of the address); the port is 0..65535 in
// decimal digits only; a host name is refused, never resolved (a lookup at start-up or reload
// could block or answer differently on each node). The error says what is wrong, without the
// text itself: the caller names the setting and shows an example.
Result<IpPort> parse_ip_port(std::string_view text);

}  // namespace lockferry::net
