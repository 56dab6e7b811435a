// SPDX-License-Identifier: Apache-2.0
// The metrics listen address ("metrics.listen"): checked when the settings are read, used when
// lockferryd opens /metrics.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <string_view>

#include "lockferry/result.h"

namespace lockferry::daemon {

// "127.0.0.1:9464", "[::1]:9464", "localhost:9464"; port 0 = any free port (tests). Errors say
// what a valid value looks like.
Result<boost::asio::ip::tcp::endpoint> parse_listen_address(std::string_view text);

}  // namespace lockferry::daemon
