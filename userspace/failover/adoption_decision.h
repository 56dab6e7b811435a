// SPDX-License-Identifier: Apache-2.0
// Who adopts a node that went down: a pure decision from what this node knows (the down node's
// last heartbeat, the membership view's choice, failover.automatic), so every branch is tested
// without a cluster. lockferryd's Cluster acts on the answer.
#pragma once

#include <string>
#include <vector>

namespace lockferry::failover {

// What this node knows when the health agent declares `node` down.
struct PeerDown {
  std::string node;
  bool was_serving = false;  // it held the service when it went down
  bool fenced = false;       // its last heartbeat said another node had already adopted it
};

struct AdoptionPolicy {
  std::string self;                      // this node
  bool automatic = false;                // failover.automatic
  std::vector<std::string> adopt_order;  // failover.adopt_order, only for the log line
};

struct AdoptionDecision {
  enum class Outcome {
    adopt_here,       // this node adopts the down node
    not_serving,      // nothing to adopt
    already_adopted,  // another node fenced it already
    manual,           // automatic adoption is off: the operator runs `lockferry migrate`
    no_adopter,       // no alive, fit node (this one included) can adopt it
    other_adopter,    // another node adopts it
  };
  Outcome outcome = Outcome::not_serving;
  std::string adopter;  // adopt_here / other_adopter: who adopts
  std::string message;  // the log line, naming the node and why
};

// `chosen_adopter` is the membership view's choice among this node (when fit) and the alive,
// unfenced peers (health::Membership::choose_adopter): "" when none can adopt.
AdoptionDecision decide_adoption(const PeerDown& down, const AdoptionPolicy& policy,
                                 const std::string& chosen_adopter);

}  // namespace lockferry::failover
