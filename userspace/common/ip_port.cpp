// SPDX-License-Identifier: Apache-2.0
// IP:PORT parsing; see ip_port.h.
#include "common/ip_port.h"

#include <charconv>
#include <string>

namespace lockferry::net {

Result<IpPort> parse_ip_port(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return make_error("has no host:port");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return make_error("has an unbalanced [");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return make_error("needs brackets around an IPv6 address");
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535)
    return make_error("has no valid port (0..65535)");
  boost::system::error_code parse_error;
  const auto address = boost::asio::ip::make_address(std::string(host), parse_error);
  if (parse_error)
    return make_error("has a host that is not an IP address (names are not resolved)");
  return IpPort{address, static_cast<std::uint16_t>(port)};
}

}  // namespace lockferry::net
