// SPDX-License-Identifier: Apache-2.0
// Heartbeat messages between lockferryd instances: the wire format, its HMAC-SHA256
// authentication with the cluster's shared key, and the replay guard (sequence + time window).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lockferry/result.h"

namespace lockferry::health {

enum class MessageType : std::uint8_t {
  heartbeat = 1,  // "I am alive", sent every interval while this node is healthy
  leaving = 2,    // "my service failed (or I was set down): adopt me now", sent before going quiet
  stopping = 3,   // lockferryd itself stops cleanly: do not adopt me for that (the NFS service may
                  // well be fine; a restart of lockferryd must never move the service)
};
const char* to_string(MessageType type);

struct Heartbeat {
  MessageType type = MessageType::heartbeat;
  std::string node;               // sender's node name
  std::uint64_t incarnation = 0;  // random per daemon start: a restart begins a new sequence
  std::uint64_t seq = 0;          // 1, 2, ... within one incarnation
  std::int64_t sent_ms = 0;       // sender's CLOCK_REALTIME in milliseconds
  std::uint64_t epoch = 0;        // sender's fencing epoch in the store
  bool serving = false;           // sender holds the NFS service (its health check says so)
  bool fenced = false;            // sender learned it was adopted: it writes nothing any more

  bool operator==(const Heartbeat&) const = default;
};

// The shared key all nodes of a cluster authenticate heartbeats with.
class Key {
 public:
  static constexpr std::size_t kMinBytes = 32;
  // The file's bytes (one trailing newline dropped) are the key: at least 32 bytes, e.g.
  // `head -c 32 /dev/urandom | base64 > KEY`. Refused when group or others may read it.
  static Result<Key> load(const std::string& path);
  static Result<Key> from_bytes(std::string_view bytes);
  const std::string& bytes() const { return bytes_; }

 private:
  explicit Key(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string bytes_;
};

// Longest node name a heartbeat carries (the store allows longer; such nodes cannot heartbeat).
inline constexpr std::size_t kMaxNodeName = 64;
// The largest valid message; anything longer is malformed.
inline constexpr std::size_t kMaxMessage = 40 + kMaxNodeName + 32;

// Serialises and signs. Layout (big-endian): "LFHB", version 1, type, flags (bit 0 serving,
// bit 1 fenced), node length, incarnation, seq, sent_ms, epoch, node bytes, HMAC-SHA256 of all
// that. The node name must be 1..64 bytes.
std::vector<std::uint8_t> encode(const Heartbeat& message, const Key& key);

// Why a datagram was not accepted; the codes of decode()'s and ReplayGuard's errors.
enum class Rejection : int {
  malformed = 1,  // wrong size, magic, version, type, flags or node name
  forged = 2,     // the HMAC does not match: wrong key, or altered on the way
  replayed = 3,   // sequence not newer than the last accepted one from that node
  stale = 4,      // sent_ms outside the accepted window around our clock
};
const char* to_string(Rejection rejection);

// What a datagram claims before it is authenticated, read without the key: the format checks
// of decode() (size, magic, version, name length) and the fields a receiver filters on before
// paying for the HMAC. Error code: Rejection::malformed. The view points into `datagram`.
struct Claim {
  std::string_view node;
  std::uint64_t incarnation = 0;
  std::uint64_t seq = 0;
  std::int64_t sent_ms = 0;
};
Result<Claim> peek(std::span<const std::uint8_t> datagram);

// Checks the format first (cheap, peek()), then the HMAC in constant time. Error code: a
// Rejection.
Result<Heartbeat> decode(std::span<const std::uint8_t> datagram, const Key& key);

// Rejects authenticated messages that were seen before or are too old: per node it keeps the
// incarnation, the highest sequence and the newest sent_ms accepted. A message is accepted when
// its sent_ms is within `window` of `now_ms` and either continues the known incarnation with a
// higher sequence, or starts another incarnation with a sent_ms newer than anything accepted
// from that node (a restarted daemon; an old incarnation's messages replayed later are older).
// Clocks of the nodes must agree within the window (NTP).
class ReplayGuard {
 public:
  explicit ReplayGuard(std::chrono::milliseconds window) : window_(window) {}
  // Accepts (and remembers) the message, or fails with Rejection::replayed / stale.
  Result<void> admit(const Heartbeat& message, std::int64_t now_ms);

 private:
  struct Seen {
    std::uint64_t incarnation = 0;
    std::uint64_t seq = 0;
    std::int64_t newest_ms = 0;
  };
  std::chrono::milliseconds window_;
  std::map<std::string, Seen> seen_;
};

}  // namespace lockferry::health
