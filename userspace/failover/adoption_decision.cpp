// SPDX-License-Identifier: Apache-2.0
// The adoption decision; see adoption_decision.h.
#include "failover/adoption_decision.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace lockferry::failover {

AdoptionDecision decide_adoption(const PeerDown& down, const AdoptionPolicy& policy,
                                 const std::string& chosen_adopter) {
  using Outcome = AdoptionDecision::Outcome;
  const std::string& node = down.node;
  if (!down.was_serving)
    return {Outcome::not_serving, "", fmt::format("{} was not serving: nothing to adopt", node)};
  if (down.fenced)
    return {
        Outcome::already_adopted, "",
        fmt::format("{} had already been adopted (it said it is fenced): nothing to adopt", node)};
  if (!policy.automatic)
    return {Outcome::manual, "",
            fmt::format("automatic adoption is off ('failover.automatic'): adopt {} with "
                        "`lockferry migrate --from {}` on the adoptive node",
                        node, node)};
  if (chosen_adopter.empty())
    return {Outcome::no_adopter, "",
            fmt::format("no node can adopt {}: none is alive and fit", node)};
  if (chosen_adopter != policy.self)
    return {Outcome::other_adopter, chosen_adopter,
            fmt::format("{} adopts {} (adopt order {}); this node does not", chosen_adopter, node,
                        fmt::join(policy.adopt_order, ", "))};
  return {Outcome::adopt_here, policy.self, fmt::format("this node adopts {}", node)};
}

}  // namespace lockferry::failover
