// SPDX-License-Identifier: Apache-2.0
// Concurrent client name lookups; see resolve.h.
#include "notify/resolve.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <thread>

namespace lockferry::notify {

using boost::asio::ip::address_v4;

namespace {

std::optional<address_v4> dotted(const std::string& name) {
  in_addr a{};
  if (inet_pton(AF_INET, name.c_str(), &a) != 1) return std::nullopt;
  return address_v4(ntohl(a.s_addr));
}

}  // namespace

Result<address_v4> resolve_client(const std::string& name) {
  if (auto a = dotted(name)) return *a;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(name.c_str(), nullptr, &hints, &found); rc != 0)
    return make_error("cannot resolve {}: {}", name, gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> hold(found, freeaddrinfo);
  const auto* sin = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
  return address_v4(ntohl(sin->sin_addr.s_addr));
}

ResolvedClients resolve_clients(const std::vector<std::string>& clients,
                                const std::vector<std::string>& fallbacks, std::size_t parallel,
                                const Resolver& resolve) {
  std::vector<std::optional<Result<address_v4>>> found(clients.size());
  auto lookup = [&](std::size_t i) {
    auto found = resolve(clients[i]);
    if (found || i >= fallbacks.size() || fallbacks[i].empty() || fallbacks[i] == clients[i])
      return found;
    auto second = resolve(fallbacks[i]);
    if (second) return second;
    return Result<address_v4>(
        make_error("{}; nor its mon_name: {}", found.error().message, second.error().message));
  };
  std::vector<std::size_t> names;  // indexes of the clients that need a lookup
  for (std::size_t i = 0; i < clients.size(); ++i) {
    if (auto a = dotted(clients[i]))
      found[i] = *a;
    else
      names.push_back(i);
  }
  // Each worker takes the next name until none is left; results land in their client's slot.
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t n = next++; n < names.size(); n = next++) found[names[n]] = lookup(names[n]);
  };
  const std::size_t workers = std::min(std::max<std::size_t>(parallel, 1), names.size());
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < workers; ++t) threads.emplace_back(work);
  if (workers > 0) work();  // this thread is one of them
  for (auto& t : threads) t.join();

  ResolvedClients out;
  out.targets.reserve(clients.size());
  for (std::size_t i = 0; i < clients.size(); ++i) {
    if (*found[i]) {
      out.targets.push_back(Target{clients[i], **found[i]});
      continue;
    }
    ClientResult r;
    r.client = clients[i];
    r.error = found[i]->error().message;
    out.unresolved.push_back(std::move(r));
  }
  return out;
}

}  // namespace lockferry::notify
