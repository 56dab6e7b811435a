// SPDX-License-Identifier: Apache-2.0
// ONC RPC over UDP for the built-in notifier: the two calls it makes — PMAP GETPORT (rpcbind v2,
// RFC 1833) to find a client's statd, and SM_NOTIFY (NSM 100024 v1 proc 6) — and their replies.
// Calls carry AUTH_NULL, as nfs-utils' sm-notify sends them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lockferry/result.h"

namespace lockferry::notify {

inline constexpr std::uint32_t kPmapProgram = 100000;
inline constexpr std::uint32_t kPmapVersion = 2;
inline constexpr std::uint32_t kPmapGetport = 3;
inline constexpr std::uint32_t kNsmProgram = 100024;
inline constexpr std::uint32_t kNsmVersion = 1;
inline constexpr std::uint32_t kNsmNotify = 6;
inline constexpr std::uint32_t kIpProtoUdp = 17;
inline constexpr std::uint16_t kRpcbindPort = 111;
inline constexpr std::size_t kMaxMonName = 1024;  // SM_MAXSTRLEN

using Bytes = std::vector<std::uint8_t>;

// PMAPPROC_GETPORT(prog, vers, IPPROTO_UDP, 0): the port of `program` on the peer.
Bytes encode_getport_call(std::uint32_t xid, std::uint32_t program, std::uint32_t version);

// SM_NOTIFY(stat_chge{mon_name, state}): "mon_name rebooted, its NSM state is now `state`".
Bytes encode_sm_notify_call(std::uint32_t xid, std::string_view mon_name, std::int32_t state);

// A reply the peer accepted and ran successfully (MSG_ACCEPTED, SUCCESS); `results` are the
// procedure's XDR results.
struct Reply {
  std::uint32_t xid = 0;
  std::span<const std::uint8_t> results;
};

// The xid alone, so a datagram can be matched to its call before it is checked further;
// fails for anything shorter than an RPC header or not a reply.
Result<std::uint32_t> reply_xid(std::span<const std::uint8_t> datagram);

// The whole reply: fails (naming why) when it is denied, not SUCCESS, or truncated.
Result<Reply> parse_reply(std::span<const std::uint8_t> datagram);

// GETPORT's result: the port, 0 when the program is not registered.
Result<std::uint16_t> parse_getport_result(std::span<const std::uint8_t> results);

}  // namespace lockferry::notify
