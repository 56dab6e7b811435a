// SPDX-License-Identifier: Apache-2.0
// Client names to the IPv4 addresses SM_NOTIFY goes to, as sm-notify finds them: a monitor
// record's file name is an address or a host name. Names are looked up several at once: a fleet
// whose records are named by host names must not wait for each lookup (a DNS round trip, or a
// resolver timeout for a name that is gone) in turn.
#pragma once

#include <boost/asio/ip/address_v4.hpp>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "lockferry/result.h"
#include "notify/client_result.h"
#include "notify/sender.h"

namespace lockferry::notify {

using Resolver = std::function<Result<boost::asio::ip::address_v4>(const std::string& name)>;

// The system's lookup (getaddrinfo, IPv4): statd records hold IPv4 addresses only, so an
// IPv6-only name cannot be notified over this path.
Result<boost::asio::ip::address_v4> resolve_client(const std::string& name);

struct ResolvedClients {
  std::vector<Target> targets;           // in the order of the names given
  std::vector<ClientResult> unresolved;  // unreachable, with the lookup's error
};

// Dotted addresses are taken as they are; every other name is looked up with `resolve`, at most
// `parallel` lookups at a time (1 = one after another). A name that does not resolve is tried as
// its `fallbacks` entry (same index; "" = none): the record's mon_name, the name the client's lock
// manager gave, often its address, where statd named the file by a DNS name that no longer
// resolves here.
ResolvedClients resolve_clients(const std::vector<std::string>& clients,
                                const std::vector<std::string>& fallbacks = {},
                                std::size_t parallel = 32,
                                const Resolver& resolve = resolve_client);

}  // namespace lockferry::notify
