// SPDX-License-Identifier: Apache-2.0
// Addresses as text; see address_text.h.
#include "common/address_text.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cstring>
#include <utility>

namespace lockferry::net {
namespace {

// (family, 16 bytes) of an IPv4 or IPv6 address in text; family 0 when it is neither.
std::pair<int, std::array<unsigned char, 16>> parse_address(std::string_view text) {
  std::array<unsigned char, 16> bytes{};
  const std::string s(text);
  if (::inet_pton(AF_INET, s.c_str(), bytes.data()) == 1) return {AF_INET, bytes};
  if (::inet_pton(AF_INET6, s.c_str(), bytes.data()) == 1) return {AF_INET6, bytes};
  return {0, bytes};
}

}  // namespace

std::string sockaddr_text(const std::uint8_t* sa, std::size_t len) {
  std::uint16_t family = 0;
  if (len < sizeof(family)) return {};
  std::memcpy(&family, sa, sizeof(family));
  char text[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET && len >= 8) {
    ::inet_ntop(AF_INET, sa + 4, text, sizeof(text));
  } else if (family == AF_INET6 && len >= 24) {
    in6_addr a;
    std::memcpy(&a, sa + 8, sizeof(a));
    if (IN6_IS_ADDR_V4MAPPED(&a))
      ::inet_ntop(AF_INET, sa + 20, text, sizeof(text));
    else
      ::inet_ntop(AF_INET6, &a, text, sizeof(text));
  }
  return text;
}

bool same_address(std::string_view a, std::string_view b) {
  const auto pa = parse_address(a), pb = parse_address(b);
  if (pa.first == 0 || pb.first == 0) return a == b;
  return pa == pb;
}

}  // namespace lockferry::net
