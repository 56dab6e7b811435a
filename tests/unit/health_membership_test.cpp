// SPDX-License-Identifier: Apache-2.0
// The membership state machine on a fake clock (dead after silence, leaving, set down/up, a
// clean lockferryd stop) and the choice of the one adoptive node among three.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "health/membership.h"

namespace lockferry::health {
namespace {

using namespace std::chrono_literals;
using Kind = PeerEvent::Kind;

Heartbeat from(const std::string& node, bool serving = true,
               MessageType type = MessageType::heartbeat) {
  Heartbeat m;
  m.node = node;
  m.type = type;
  m.serving = serving;
  return m;
}

TEST(Membership, APeerIsDeadAfterDeadAfterOfSilenceAndNotBefore) {
  Membership m("nodeB", {"nodeA", "nodeB"}, 3000ms);
  EXPECT_EQ(m.peers().size(), 1u);  // itself is not a peer
  auto up = m.heard(from("nodeA"), 1000ms);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->kind, Kind::up);
  EXPECT_FALSE(m.heard(from("nodeA"), 1500ms));  // already alive: no event
  EXPECT_TRUE(m.tick(4499ms).empty());
  auto events = m.tick(4500ms);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::down);
  EXPECT_EQ(events[0].node, "nodeA");
  EXPECT_TRUE(events[0].was_serving);
  EXPECT_EQ(m.peer("nodeA")->state, PeerState::dead);
  EXPECT_TRUE(m.tick(10000ms).empty());  // declared once
  auto back = m.heard(from("nodeA"), 11000ms);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, Kind::up);
  EXPECT_EQ(m.peer("nodeA")->state, PeerState::alive);
}

TEST(Membership, APeerNeverHeardFromIsNeverDeclaredDead) {
  Membership m("nodeB", {"nodeA", "nodeB"}, 3000ms);
  EXPECT_TRUE(m.tick(100000ms).empty());
  EXPECT_EQ(m.peer("nodeA")->state, PeerState::unknown);
}

TEST(Membership, LeavingIsDownAtOnceAndCarriesWhetherItServed) {
  Membership m("nodeB", {"nodeA", "nodeB", "nodeC"}, 3000ms);
  m.heard(from("nodeA"), 0ms);
  m.heard(from("nodeC", false), 0ms);
  auto left = m.heard(from("nodeA", true, MessageType::leaving), 100ms);
  ASSERT_TRUE(left);
  EXPECT_EQ(left->kind, Kind::down);
  EXPECT_TRUE(left->was_serving);
  EXPECT_FALSE(
      m.heard(from("nodeA", true, MessageType::leaving), 200ms));  // said 3 times, acted on once
  EXPECT_EQ(m.peer("nodeA")->state, PeerState::left);
  EXPECT_TRUE(m.tick(10000ms).size() == 1u);  // only nodeC goes silent -> dead
  auto standby_left = m.heard(from("nodeC", false, MessageType::leaving), 10100ms);
  ASSERT_TRUE(standby_left);
  EXPECT_FALSE(standby_left->was_serving);
}

TEST(Membership, ACleanLockferrydStopIsNotAFailure) {
  Membership m("nodeB", {"nodeA", "nodeB"}, 3000ms);
  m.heard(from("nodeA"), 0ms);
  EXPECT_FALSE(m.heard(from("nodeA", true, MessageType::stopping), 100ms));
  EXPECT_EQ(m.peer("nodeA")->state, PeerState::unknown);
  EXPECT_TRUE(m.tick(100000ms).empty());
}

TEST(Membership, SetDownWinsOverHeartbeatsUntilSetUp) {
  Membership m("nodeB", {"nodeA", "nodeB"}, 3000ms);
  m.heard(from("nodeA", false), 0ms);
  auto down = m.set_down("nodeA", "pacemaker says so", 100ms);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->kind, Kind::down);
  EXPECT_FALSE(down->was_serving);  // as last heard
  EXPECT_FALSE(m.set_down("nodeA", "again", 150ms));
  EXPECT_FALSE(m.heard(from("nodeA"), 200ms));
  EXPECT_EQ(m.peer("nodeA")->state, PeerState::down);
  auto up = m.set_up("nodeA", 300ms);
  ASSERT_TRUE(up);  // heard 100 ms ago: alive again
  EXPECT_EQ(up->kind, Kind::up);
  EXPECT_EQ(m.peer("nodeA")->state, PeerState::alive);
  EXPECT_FALSE(m.set_down("nodeX", "not a peer", 400ms));
}

TEST(Membership, SetDownOfANodeNeverHeardCountsAsServing) {
  Membership m("nodeB", {"nodeA", "nodeB"}, 3000ms);
  auto down = m.set_down("nodeA", "cluster manager", 0ms);
  ASSERT_TRUE(down);
  EXPECT_TRUE(down->was_serving);
  EXPECT_FALSE(m.set_up("nodeA", 10000ms));  // silent: unknown, nothing to act on
  EXPECT_EQ(m.peer("nodeA")->state, PeerState::unknown);
}

TEST(Membership, SetDownOfANodeAlreadyDeadDecidesNothingTwice) {
  Membership m("nodeB", {"nodeA", "nodeB"}, 3000ms);
  m.heard(from("nodeA"), 0ms);
  ASSERT_EQ(m.tick(5000ms).size(), 1u);
  EXPECT_FALSE(m.set_down("nodeA", "operator", 6000ms));
}

// Three nodes, each with its own view, all seeing nodeA die: exactly one adopts.
TEST(Membership, ThreeNodesAgreeOnOneAdopterByPreferenceOrder) {
  const std::vector<std::string> nodes{"nodeA", "nodeB", "nodeC"};
  const std::vector<std::string> order{"nodeC", "nodeB", "nodeA"};
  std::vector<std::string> adopters;
  for (const std::string self : {"nodeB", "nodeC"}) {
    Membership view(self, nodes, 3000ms);
    for (const auto& n : nodes) view.heard(from(n, n == "nodeA"), 0ms);
    const std::string other = self == "nodeB" ? "nodeC" : "nodeB";
    view.heard(from(other, false), 2500ms);  // the other standby keeps heartbeating
    auto events = view.tick(3500ms);         // nodeA has been silent for 3.5 s
    ASSERT_EQ(events.size(), 1u) << self;
    EXPECT_EQ(events[0].node, "nodeA");
    EXPECT_TRUE(events[0].was_serving);
    const std::string adopter = view.choose_adopter("nodeA", order, true);
    EXPECT_EQ(adopter, "nodeC") << "as seen by " << self;
    if (adopter == self) adopters.push_back(self);
  }
  EXPECT_EQ(adopters, std::vector<std::string>{"nodeC"});
}

TEST(Membership, AdopterChoiceSkipsUnfitFencedAndGoneNodesAndBreaksTiesByName) {
  Membership b("nodeB", {"nodeA", "nodeB", "nodeC", "nodeD"}, 3000ms);
  b.heard(from("nodeC"), 0ms);
  b.heard(from("nodeD"), 0ms);
  // Nobody listed: by name.
  EXPECT_EQ(b.choose_adopter("nodeA", {}, true), "nodeB");
  // This node unfit (unhealthy or fenced): the next one.
  EXPECT_EQ(b.choose_adopter("nodeA", {}, false), "nodeC");
  // Listed nodes first, in the given order; the others after.
  EXPECT_EQ(b.choose_adopter("nodeA", {"nodeD"}, true), "nodeD");
  // A fenced peer never adopts.
  Heartbeat fenced = from("nodeD");
  fenced.fenced = true;
  b.heard(fenced, 100ms);
  EXPECT_EQ(b.choose_adopter("nodeA", {"nodeD", "nodeC"}, true), "nodeC");
  // A dead peer never adopts; the dead node never adopts itself.
  ASSERT_EQ(b.tick(3200ms).size(), 2u);
  EXPECT_EQ(b.choose_adopter("nodeA", {"nodeC", "nodeD"}, true), "nodeB");
  EXPECT_EQ(b.choose_adopter("nodeB", {}, true), "");
  EXPECT_EQ(adoption_order({"z", "b", "a", "c"}, {"c", "z"}),
            (std::vector<std::string>{"c", "z", "a", "b"}));
}

}  // namespace
}  // namespace lockferry::health
