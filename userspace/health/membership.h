// SPDX-License-Identifier: Apache-2.0
// Membership: what this node believes about each peer (alive, dead, left, set down) from the
// heartbeats it accepted and the time that passed, and which node adopts a dead one. Pure state
// machine on a caller-supplied clock, so tests drive it with a fake one.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "health/heartbeat.h"

namespace lockferry::health {

// Milliseconds on a monotonic clock (steady_clock in the daemon, anything in tests).
using Millis = std::chrono::milliseconds;

enum class PeerState {
  unknown,  // not heard since this daemon started, or its lockferryd stopped cleanly: never
            // adopted automatically
  alive,    // heard within dead_after
  dead,     // was alive, then silent for dead_after
  left,     // said "leaving": its own health check failed or it was set down
  down,     // set down through the control socket (`lockferry health set-down`)
};
const char* to_string(PeerState state);

struct PeerStatus {
  std::string node;
  PeerState state = PeerState::unknown;
  bool serving = false;  // as last heard
  bool fenced = false;   // as last heard
  std::uint64_t epoch = 0;
  std::optional<Millis> last_heard;
  Millis since{0};     // when the current state began
  std::string reason;  // why it is in this state (for status and logs)
  std::uint64_t heartbeats = 0;
  // The longest silence between two heartbeats heard while it was alive: how close it came to
  // being declared dead.
  Millis max_gap{0};
};

// A change worth acting on. `down` of a node that was serving is what triggers an adoption.
struct PeerEvent {
  enum class Kind { up, down };
  Kind kind = Kind::down;
  std::string node;
  bool was_serving = false;
  std::string reason;
};

class Membership {
 public:
  Membership(std::string self, const std::vector<std::string>& peers, Millis dead_after);

  // An authenticated, fresh message from a configured peer. A node set down stays down (its
  // heartbeats are still recorded) until set_up.
  std::optional<PeerEvent> heard(const Heartbeat& message, Millis now);
  // Declares dead every alive peer silent for dead_after.
  std::vector<PeerEvent> tick(Millis now);
  // An external monitor or the operator says the node is down (adopt it) / may come back. A node
  // never heard from counts as serving when set down: whoever set it down knows it was.
  std::optional<PeerEvent> set_down(const std::string& node, const std::string& reason, Millis now);
  std::optional<PeerEvent> set_up(const std::string& node, Millis now);

  bool is_peer(const std::string& node) const { return peers_.count(node) != 0; }
  const PeerStatus* peer(const std::string& node) const;
  std::vector<PeerStatus> peers() const;
  const std::string& self() const { return self_; }
  Millis dead_after() const { return dead_after_; }

  // Who adopts `dead`: among this node (when `self_fit`: healthy and not fenced) and the alive,
  // unfenced peers other than `dead`, the first one listed in `order`; nodes not listed come
  // after, by name. Every node computes the same answer from the same view, so exactly one
  // adopts; if views differ, the store's compare-and-set on the dead node's epoch still lets
  // only one fence it. Empty when there is no candidate.
  std::string choose_adopter(const std::string& dead, const std::vector<std::string>& order,
                             bool self_fit) const;

 private:
  void enter(PeerStatus& p, PeerState state, std::string reason, Millis now);

  std::string self_;
  Millis dead_after_;
  std::map<std::string, PeerStatus> peers_;
  std::map<std::string, bool> forced_down_;
};

// Orders candidate nodes as choose_adopter does (first by position in `order`, then by name).
std::vector<std::string> adoption_order(std::vector<std::string> candidates,
                                        const std::vector<std::string>& order);

}  // namespace lockferry::health
