// SPDX-License-Identifier: Apache-2.0
// The adoption decision: every reason a down node is (not) adopted here, without a cluster.
#include "failover/adoption_decision.h"

#include <gtest/gtest.h>

namespace lockferry::failover {
namespace {

using Outcome = AdoptionDecision::Outcome;

PeerDown serving_node_down() { return {"nfs1", true, false}; }
AdoptionPolicy automatic_on() { return {"nfs2", true, {"nfs2", "nfs3"}}; }

TEST(AdoptionDecisionTest, TheChosenAdopterAdoptsAServingNodeThatWentDown) {
  const auto d = decide_adoption(serving_node_down(), automatic_on(), "nfs2");
  EXPECT_EQ(d.outcome, Outcome::adopt_here);
  EXPECT_EQ(d.adopter, "nfs2");
}

TEST(AdoptionDecisionTest, ANodeThatWasNotServingIsNotAdopted) {
  PeerDown down = serving_node_down();
  down.was_serving = false;
  const auto d = decide_adoption(down, automatic_on(), "nfs2");
  EXPECT_EQ(d.outcome, Outcome::not_serving);
  EXPECT_NE(d.message.find("nfs1 was not serving"), std::string::npos) << d.message;
}

TEST(AdoptionDecisionTest, ANodeThatSaidItIsFencedIsNotAdoptedAgain) {
  PeerDown down = serving_node_down();
  down.fenced = true;
  const auto d = decide_adoption(down, automatic_on(), "nfs2");
  EXPECT_EQ(d.outcome, Outcome::already_adopted);
  EXPECT_TRUE(d.adopter.empty());
}

TEST(AdoptionDecisionTest, WithAutomaticAdoptionOffTheOperatorIsToldWhatToRun) {
  AdoptionPolicy policy = automatic_on();
  policy.automatic = false;
  const auto d = decide_adoption(serving_node_down(), policy, "nfs2");
  EXPECT_EQ(d.outcome, Outcome::manual);
  EXPECT_NE(d.message.find("lockferry migrate --from nfs1"), std::string::npos) << d.message;
}

TEST(AdoptionDecisionTest, NobodyAdoptsWhenNoNodeIsAliveAndFit) {
  const auto d = decide_adoption(serving_node_down(), automatic_on(), "");
  EXPECT_EQ(d.outcome, Outcome::no_adopter);
  EXPECT_TRUE(d.adopter.empty());
}

TEST(AdoptionDecisionTest, AnotherChosenNodeAdoptsAndThisOneDoesNot) {
  const auto d = decide_adoption(serving_node_down(), automatic_on(), "nfs3");
  EXPECT_EQ(d.outcome, Outcome::other_adopter);
  EXPECT_EQ(d.adopter, "nfs3");
  EXPECT_NE(d.message.find("adopt order nfs2, nfs3"), std::string::npos) << d.message;
}

// The checks run in this order: a fenced node that was not serving is "not serving", and a
// fenced node is not adopted even when this node would be the adopter and automatic is on.
TEST(AdoptionDecisionTest, ServingIsCheckedFirstThenFencingThenTheSetting) {
  EXPECT_EQ(decide_adoption({"nfs1", false, true}, automatic_on(), "nfs2").outcome,
            Outcome::not_serving);
  AdoptionPolicy manual = automatic_on();
  manual.automatic = false;
  EXPECT_EQ(decide_adoption({"nfs1", true, true}, manual, "nfs2").outcome,
            Outcome::already_adopted);
  EXPECT_EQ(decide_adoption({"nfs1", true, false}, manual, "").outcome, Outcome::manual);
}

}  // namespace
}  // namespace lockferry::failover
