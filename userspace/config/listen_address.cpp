// SPDX-License-Identifier: Apache-2.0
// The metrics listen address; see listen_address.h.
#include "config/listen_address.h"

#include <string>

#include "common/ip_port.h"

namespace lockferry::daemon {

using boost::asio::ip::tcp;

Result<tcp::endpoint> parse_listen_address(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return make_error(
        "metrics listen address \"{}\" {}: write \"127.0.0.1:9464\" or \"[::1]:9464\" "
        "(an IP address and a port; \"\" turns /metrics off)",
        text, why);
  };
  // The one name allowed: the loopback address everyone writes.
  std::string spelled(text);
  if (spelled.starts_with("localhost:")) spelled.replace(0, 9, "127.0.0.1");
  auto parsed = net::parse_ip_port(spelled);
  if (!parsed) return bad(parsed.error().message);
  return tcp::endpoint(parsed->address, parsed->port);
}

}  // namespace lockferry::daemon
