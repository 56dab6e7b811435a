// SPDX-License-Identifier: Apache-2.0
// The metrics listen address; see listen_address.h.
#include "config/listen_address.h"

#include <charconv>
#include <string>

namespace lockferry::daemon {

using boost::asio::ip::tcp;

Result<tcp::endpoint> parse_listen_address(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return make_error(
        "metrics listen address \"{}\" {}: write \"127.0.0.1:9464\" or \"[::1]:9464\" "
        "(an IP address and a port; \"\" turns /metrics off)",
        text, why);
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad("has no host:port");
  std::string host(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad("has an unbalanced [");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return bad("needs brackets around an IPv6 address");
  }
  if (host == "localhost") host = "127.0.0.1";
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535)
    return bad("has no valid port (0..65535)");
  boost::system::error_code parse_error;
  auto address = boost::asio::ip::make_address(host, parse_error);
  if (parse_error) return bad("does not start with an IP address (host names are not resolved)");
  return tcp::endpoint(address, static_cast<unsigned short>(port));
}

}  // namespace lockferry::daemon
