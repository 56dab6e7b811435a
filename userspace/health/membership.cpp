// SPDX-License-Identifier: Apache-2.0
// The peers' state machine and the choice of the adoptive node; see membership.h.
#include "health/membership.h"

#include <fmt/format.h>

#include <algorithm>

namespace lockferry::health {

const char* to_string(PeerState state) {
  switch (state) {
    case PeerState::unknown:
      return "unknown";
    case PeerState::alive:
      return "alive";
    case PeerState::dead:
      return "dead";
    case PeerState::left:
      return "left";
    case PeerState::down:
      return "down";
  }
  return "?";
}

Membership::Membership(std::string self, const std::vector<std::string>& peers, Millis dead_after)
    : self_(std::move(self)), dead_after_(dead_after) {
  for (const auto& p : peers) {
    if (p == self_) continue;
    peers_[p].node = p;
    peers_[p].reason = "not heard from since start";
  }
}

void Membership::enter(PeerStatus& p, PeerState state, std::string reason, Millis now) {
  p.state = state;
  p.since = now;
  p.reason = std::move(reason);
}

std::optional<PeerEvent> Membership::heard(const Heartbeat& m, Millis now) {
  auto it = peers_.find(m.node);
  if (it == peers_.end()) return std::nullopt;
  PeerStatus& p = it->second;
  if (p.state == PeerState::alive && p.last_heard)
    p.max_gap = std::max(p.max_gap, now - *p.last_heard);
  p.last_heard = now;
  p.serving = m.serving;
  p.fenced = m.fenced;
  p.epoch = m.epoch;
  ++p.heartbeats;
  if (forced_down_[m.node]) return std::nullopt;

  if (m.type == MessageType::stopping) {
    // Not a failure: nothing is decided about it until it heartbeats again.
    enter(p, PeerState::unknown, "lockferryd there stopped cleanly (not adopted automatically)",
          now);
    return std::nullopt;
  }
  if (m.type == MessageType::leaving) {
    if (p.state == PeerState::left) return std::nullopt;
    enter(p, PeerState::left,
          m.serving ? "said it is leaving: its NFS service failed or it was "
                      "set down"
                    : "said it is leaving (it was not serving)",
          now);
    return PeerEvent{PeerEvent::Kind::down, p.node, m.serving, p.reason};
  }
  if (p.state == PeerState::alive) return std::nullopt;
  const bool was_known = p.state != PeerState::unknown;
  enter(p, PeerState::alive, was_known ? "heartbeats again" : "heartbeats", now);
  return PeerEvent{PeerEvent::Kind::up, p.node, m.serving, p.reason};
}

std::vector<PeerEvent> Membership::tick(Millis now) {
  std::vector<PeerEvent> events;
  for (auto& [node, p] : peers_) {
    if (p.state != PeerState::alive || !p.last_heard) continue;
    if (now - *p.last_heard < dead_after_) continue;
    enter(p, PeerState::dead,
          fmt::format("silent for {} ms (dead_after_ms {})", (now - *p.last_heard).count(),
                      dead_after_.count()),
          now);
    events.push_back(PeerEvent{PeerEvent::Kind::down, node, p.serving, p.reason});
  }
  return events;
}

std::optional<PeerEvent> Membership::set_down(const std::string& node, const std::string& reason,
                                              Millis now) {
  auto it = peers_.find(node);
  if (it == peers_.end()) return std::nullopt;
  PeerStatus& p = it->second;
  forced_down_[node] = true;
  if (p.state == PeerState::down) return std::nullopt;
  const bool was_serving = p.last_heard ? p.serving : true;
  const bool already_gone = p.state == PeerState::dead || p.state == PeerState::left;
  enter(p, PeerState::down, reason, now);
  // Already declared gone: its adoption was decided then; do not decide it twice.
  if (already_gone) return std::nullopt;
  return PeerEvent{PeerEvent::Kind::down, node, was_serving, reason};
}

std::optional<PeerEvent> Membership::set_up(const std::string& node, Millis now) {
  auto it = peers_.find(node);
  if (it == peers_.end()) return std::nullopt;
  PeerStatus& p = it->second;
  forced_down_[node] = false;
  if (p.state != PeerState::down) return std::nullopt;
  if (p.last_heard && now - *p.last_heard < dead_after_) {
    enter(p, PeerState::alive, "set up, and heartbeats", now);
    return PeerEvent{PeerEvent::Kind::up, node, p.serving, p.reason};
  }
  // Silent: it counts again once it heartbeats; until then nothing is decided about it.
  enter(p, PeerState::unknown, "set up; not heard from since", now);
  return std::nullopt;
}

const PeerStatus* Membership::peer(const std::string& node) const {
  auto it = peers_.find(node);
  return it == peers_.end() ? nullptr : &it->second;
}

std::vector<PeerStatus> Membership::peers() const {
  std::vector<PeerStatus> out;
  for (const auto& [node, p] : peers_) out.push_back(p);
  return out;
}

std::vector<std::string> adoption_order(std::vector<std::string> candidates,
                                        const std::vector<std::string>& order) {
  auto rank = [&](const std::string& node) {
    auto it = std::find(order.begin(), order.end(), node);
    return static_cast<std::size_t>(it - order.begin());  // order.size() when not listed
  };
  std::sort(candidates.begin(), candidates.end(), [&](const std::string& a, const std::string& b) {
    auto ra = rank(a), rb = rank(b);
    return ra != rb ? ra < rb : a < b;
  });
  return candidates;
}

std::string Membership::choose_adopter(const std::string& dead,
                                       const std::vector<std::string>& order, bool self_fit) const {
  std::vector<std::string> candidates;
  if (self_fit && self_ != dead) candidates.push_back(self_);
  for (const auto& [node, p] : peers_) {
    if (node != dead && p.state == PeerState::alive && !p.fenced) candidates.push_back(node);
  }
  if (candidates.empty()) return "";
  return adoption_order(std::move(candidates), order).front();
}

}  // namespace lockferry::health
