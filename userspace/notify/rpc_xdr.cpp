// SPDX-License-Identifier: Apache-2.0
// XDR of the notifier's RPC calls and replies; see rpc_xdr.h (RFC 5531, RFC 4506).
#include "notify/rpc_xdr.h"

namespace lockferry::notify {
namespace {

constexpr std::uint32_t kCall = 0;
constexpr std::uint32_t kReply = 1;
constexpr std::uint32_t kRpcVersion = 2;
constexpr std::uint32_t kMsgAccepted = 0;
constexpr std::uint32_t kSuccess = 0;
constexpr std::uint32_t kAuthNull = 0;

void put_u32(Bytes& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 24));
  out.push_back(static_cast<std::uint8_t>(v >> 16));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

// XDR string: length, bytes, zero padding to a multiple of four.
void put_string(Bytes& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
  out.resize(out.size() + (4 - s.size() % 4) % 4, 0);
}

void put_call_header(Bytes& out, std::uint32_t xid, std::uint32_t prog, std::uint32_t vers,
                     std::uint32_t proc) {
  for (std::uint32_t v : {xid, kCall, kRpcVersion, prog, vers, proc, kAuthNull, 0u, kAuthNull, 0u})
    put_u32(out, v);
}

// Reads big-endian words from a datagram, failing past its end.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> data) : data_(data) {}
  bool u32(std::uint32_t& v) {
    if (data_.size() - pos_ < 4) return false;
    v = std::uint32_t{data_[pos_]} << 24 | std::uint32_t{data_[pos_ + 1]} << 16 |
        std::uint32_t{data_[pos_ + 2]} << 8 | std::uint32_t{data_[pos_ + 3]};
    pos_ += 4;
    return true;
  }
  bool skip(std::size_t n) {
    if (data_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  std::span<const std::uint8_t> rest() const { return data_.subspan(pos_); }

 private:
  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
};

}  // namespace

Bytes encode_getport_call(std::uint32_t xid, std::uint32_t program, std::uint32_t version) {
  Bytes out;
  out.reserve(56);
  put_call_header(out, xid, kPmapProgram, kPmapVersion, kPmapGetport);
  for (std::uint32_t v : {program, version, kIpProtoUdp, 0u}) put_u32(out, v);
  return out;
}

Bytes encode_sm_notify_call(std::uint32_t xid, std::string_view mon_name, std::int32_t state) {
  Bytes out;
  out.reserve(48 + mon_name.size());
  put_call_header(out, xid, kNsmProgram, kNsmVersion, kNsmNotify);
  put_string(out, mon_name.substr(0, kMaxMonName));
  put_u32(out, static_cast<std::uint32_t>(state));
  return out;
}

Result<std::uint32_t> reply_xid(std::span<const std::uint8_t> datagram) {
  Reader r(datagram);
  std::uint32_t xid = 0, type = 0;
  if (!r.u32(xid) || !r.u32(type)) return make_error("RPC datagram of {} bytes", datagram.size());
  if (type != kReply) return make_error("RPC message type {} is not a reply", type);
  return xid;
}

Result<Reply> parse_reply(std::span<const std::uint8_t> datagram) {
  Reader r(datagram);
  std::uint32_t xid = 0, type = 0, stat = 0, flavor = 0, length = 0, accept = 0;
  if (!r.u32(xid) || !r.u32(type) || !r.u32(stat))
    return make_error("truncated RPC reply ({} bytes)", datagram.size());
  if (type != kReply) return make_error("RPC message type {} is not a reply", type);
  if (stat != kMsgAccepted) return make_error("RPC call denied (reply_stat {})", stat);
  if (!r.u32(flavor) || !r.u32(length) || length > 400 || !r.skip((length + 3) / 4 * 4) ||
      !r.u32(accept))
    return make_error("truncated RPC reply verifier");
  if (accept != kSuccess)
    return make_error(
        "RPC call not run: accept_stat {} (1 program unavailable, 2 version "
        "mismatch, 3 procedure unavailable, 4 garbage arguments)",
        accept);
  return Reply{xid, r.rest()};
}

Result<std::uint16_t> parse_getport_result(std::span<const std::uint8_t> results) {
  Reader r(results);
  std::uint32_t port = 0;
  if (!r.u32(port)) return make_error("truncated GETPORT result");
  if (port > 65535) return make_error("GETPORT answered port {}", port);
  return static_cast<std::uint16_t>(port);
}

}  // namespace lockferry::notify
