// SPDX-License-Identifier: Apache-2.0
// Three health agents on loopback, each on its own io_context like three lockferryd: a hung
// primary is declared dead and exactly one standby adopts it; a primary whose health check fails
// says it leaves; forged, replayed, stale and malformed packets are counted and change nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "daemon/cluster.h"
#include "daemon/worker.h"
#include "dir_store_test_util.h"
#include "health/agent.h"

namespace lockferry::health {
namespace {

using namespace std::chrono_literals;
using boost::asio::ip::udp;

unsigned short free_udp_port() {
  boost::asio::io_context io;
  udp::socket s(io, udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return s.local_endpoint().port();
}

// One "node": an agent on its own loop and thread. Freezing the loop is a hung node: its socket
// stays open, but it sends nothing and reads nothing.
class Node {
 public:
  Node(std::string name, Options options) : name_(std::move(name)), options_(std::move(options)) {}
  ~Node() { shutdown(); }

  void start(std::vector<std::string> order) {
    std::promise<std::string> started;
    thread_ = std::thread([this, order, &started] {
      auto agent = Agent::start(
          io_, name_, options_,
          [this, order](const PeerEvent& e) {
            std::lock_guard lock(mutex_);
            events_.push_back(e);
            if (e.kind == PeerEvent::Kind::down && e.was_serving)
              adopters_.push_back(agent_->choose_adopter(e.node, order));
            cv_.notify_all();
          },
          [this] {
            return std::pair<std::uint64_t, bool>{0, fenced_.load()};
          });
      if (!agent) {
        started.set_value(agent.error().message);
        return;
      }
      agent_ = std::move(*agent);
      started.set_value("");
      auto guard = boost::asio::make_work_guard(io_);
      io_.run_for(60s);  // failsafe
    });
    auto error = started.get_future().get();
    ASSERT_EQ(error, "") << name_;
  }

  // Runs fn on the node's loop and waits for it (state is only touched there).
  template <typename F>
  auto on_loop(F fn) {
    std::packaged_task<decltype(fn())()> task(fn);
    auto future = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return future.get();
  }

  // What its heartbeats say from now on: fenced (this node learned it was adopted).
  void set_fenced(bool fenced) { fenced_ = fenced; }
  void freeze() { io_.stop(); }
  void shutdown() {
    if (!thread_.joinable()) return;
    if (!io_.stopped()) {
      boost::asio::post(io_, [this] {
        agent_->stop();
        io_.stop();
      });
    }
    thread_.join();
    agent_.reset();
  }

  bool wait_for(std::function<bool(const std::vector<PeerEvent>&)> pred,
                std::chrono::milliseconds t) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, t, [&] { return pred(events_); });
  }
  std::vector<PeerEvent> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::vector<std::string> adopters() {
    std::lock_guard lock(mutex_);
    return adopters_;
  }
  PeerState state_of(const std::string& peer) { return agent_->peer(peer)->state; }
  Counters counters() { return agent_->counters(); }
  Result<void> set_down(const std::string& node) {
    return on_loop([&] { return agent_->set_down(node, "test"); });
  }
  Result<void> set_up(const std::string& node) {
    return on_loop([&] { return agent_->set_up(node); });
  }

 private:
  std::string name_;
  Options options_;
  boost::asio::io_context io_;
  std::thread thread_;
  std::unique_ptr<Agent> agent_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<PeerEvent> events_;
  std::vector<std::string> adopters_;
  std::atomic<bool> fenced_{false};
};

class HealthAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_file_ = dir_ / "heartbeat.key";
    testing::write_raw_file(key_file_, std::string(32, 's') + "\n");
    ::chmod(key_file_.c_str(), 0600);
    for (const std::string n : {"nodeA", "nodeB", "nodeC"})
      addresses_[n] = "127.0.0.1:" + std::to_string(free_udp_port());
  }

  Options options_for(const std::string& node, std::vector<std::string> check) {
    Options o;
    o.enabled = true;
    o.listen = addresses_[node];
    o.peers = addresses_;
    o.key_file = key_file_;
    o.interval = 50ms;
    o.dead_after = 300ms;
    o.replay_window = 5000ms;
    o.check_command = std::move(check);
    o.check_interval = 100ms;
    o.check_timeout = 2000ms;
    return o;
  }

  // Starts nodeA and nodeB and waits (5 s at most each) until each sees the other up.
  static void start_and_see_each_other_up(Node& a, Node& b) {
    a.start({});
    b.start({});
    ASSERT_TRUE(
        b.wait_for([&](const auto& ev) { return saw(ev, PeerEvent::Kind::up, "nodeA"); }, 5s));
    ASSERT_TRUE(
        a.wait_for([&](const auto& ev) { return saw(ev, PeerEvent::Kind::up, "nodeB"); }, 5s));
  }
  static bool saw(const std::vector<PeerEvent>& events, PeerEvent::Kind kind,
                  const std::string& node) {
    for (const auto& e : events)
      if (e.kind == kind && e.node == node) return true;
    return false;
  }

  testing::TempDir dir_;
  std::string key_file_;
  std::map<std::string, std::string> addresses_;
};

const std::vector<std::string> kStandby{"sh", "-c", "exit 7"};

TEST_F(HealthAgentTest, AHungPrimaryIsDeclaredDeadAndExactlyOneStandbyAdoptsIt) {
  const std::vector<std::string> order{"nodeC", "nodeB", "nodeA"};
  Node a("nodeA", options_for("nodeA", {"true"}));
  Node b("nodeB", options_for("nodeB", kStandby));
  Node c("nodeC", options_for("nodeC", kStandby));
  a.start(order);
  b.start(order);
  c.start(order);
  for (Node* n : {&b, &c}) {
    ASSERT_TRUE(
        n->wait_for([&](const auto& ev) { return saw(ev, PeerEvent::Kind::up, "nodeA"); }, 5s));
  }
  ASSERT_TRUE(
      b.wait_for([&](const auto& ev) { return saw(ev, PeerEvent::Kind::up, "nodeC"); }, 5s));
  ASSERT_TRUE(
      c.wait_for([&](const auto& ev) { return saw(ev, PeerEvent::Kind::up, "nodeB"); }, 5s));

  const auto t0 = std::chrono::steady_clock::now();
  a.freeze();
  for (Node* n : {&b, &c}) {
    ASSERT_TRUE(
        n->wait_for([&](const auto& ev) { return saw(ev, PeerEvent::Kind::down, "nodeA"); }, 5s));
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 250ms);  // dead_after 300 ms, less at most one interval already elapsed
  EXPECT_LT(took, 2s);
  EXPECT_EQ(b.state_of("nodeA"), PeerState::dead);
  EXPECT_THAT(b.events().back().reason, ::testing::HasSubstr("silent for"));
  // Both standbys agree: nodeC adopts, nodeB does not.
  EXPECT_EQ(b.adopters(), std::vector<std::string>{"nodeC"});
  EXPECT_EQ(c.adopters(), std::vector<std::string>{"nodeC"});
  EXPECT_EQ(b.state_of("nodeC"), PeerState::alive);
}

TEST_F(HealthAgentTest, APrimaryWhoseHealthCheckFailsSaysItLeavesBeforeItWouldBeDead) {
  const std::string flag = dir_ / "nfs-is-healthy";
  testing::write_raw_file(flag, "");
  Node a("nodeA", options_for("nodeA", {"test", "-e", flag}));
  Node b("nodeB", options_for("nodeB", kStandby));
  a.start({});
  b.start({});
  ASSERT_TRUE(
      b.wait_for([&](const auto& ev) { return saw(ev, PeerEvent::Kind::up, "nodeA"); }, 5s));

  const auto t0 = std::chrono::steady_clock::now();
  ::unlink(flag.c_str());  // the NFS service "fails"
  ASSERT_TRUE(
      b.wait_for([&](const auto& ev) { return saw(ev, PeerEvent::Kind::down, "nodeA"); }, 5s));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 300ms) << "should be told, not wait for dead_after";
  EXPECT_EQ(b.state_of("nodeA"), PeerState::left);
  EXPECT_THAT(b.events().back().reason, ::testing::HasSubstr("leaving"));
  EXPECT_TRUE(b.events().back().was_serving);
  EXPECT_EQ(b.adopters(), std::vector<std::string>{"nodeB"});
  // And then it is quiet: no heartbeats while unhealthy.
  std::this_thread::sleep_for(200ms);
  const auto sent = a.counters().sent;
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(a.counters().sent, sent);
  EXPECT_EQ(a.counters().leaving_sent, 3u * 2);  // three times to each of its two peers
}

TEST_F(HealthAgentTest, ForgedReplayedStaleAndMalformedPacketsAreCountedAndChangeNothing) {
  // The test plays nodeA by hand; nodeB is a real agent.
  Node b("nodeB", options_for("nodeB", kStandby));
  b.start({});
  boost::asio::io_context io;
  udp::socket s(io, udp::endpoint(udp::v4(), 0));
  const udp::endpoint to = *parse_endpoint(addresses_["nodeB"]);
  const Key key = *Key::from_bytes(std::string(32, 's'));
  const Key wrong = *Key::from_bytes(std::string(32, 'w'));
  Heartbeat m;
  m.node = "nodeA";
  m.incarnation = 99;
  m.serving = true;
  auto send = [&](const std::vector<std::uint8_t>& bytes) {
    s.send_to(boost::asio::buffer(bytes), to);
  };
  auto genuine = [&](MessageType type) {
    m.type = type;
    m.seq += 1;
    m.sent_ms = clock::now_ns() / 1000000;
    return encode(m, key);
  };

  const auto first = genuine(MessageType::heartbeat);
  send(first);
  ASSERT_TRUE(
      b.wait_for([&](const auto& ev) { return saw(ev, PeerEvent::Kind::up, "nodeA"); }, 5s));

  // A forged "leaving", an altered genuine one, garbage, a replay, a stale one, an unknown node.
  Heartbeat forged = m;
  forged.type = MessageType::leaving;
  forged.seq = 1000;
  forged.sent_ms = clock::now_ns() / 1000000;
  send(encode(forged, wrong));
  auto altered = encode(forged, key);
  altered[6] ^= 0x02;
  send(altered);
  send({1, 2, 3});
  send(std::vector<std::uint8_t>(1000, 'L'));
  send(first);  // replayed
  Heartbeat stale = m;
  stale.type = MessageType::leaving;
  stale.seq = 2000;
  stale.sent_ms -= 3600 * 1000;
  send(encode(stale, key));
  Heartbeat stranger = m;
  stranger.node = "nodeZ";
  send(encode(stranger, key));
  // Keep nodeA alive with genuine heartbeats meanwhile.
  for (int i = 0; i < 8; ++i) {
    send(genuine(MessageType::heartbeat));
    std::this_thread::sleep_for(50ms);
  }
  const Counters c = b.counters();
  EXPECT_EQ(c.forged, 2u);
  EXPECT_EQ(c.malformed, 2u);
  EXPECT_EQ(c.replayed, 2u);
  EXPECT_EQ(c.unknown_node, 1u);
  EXPECT_EQ(c.accepted, 9u);
  EXPECT_EQ(b.state_of("nodeA"), PeerState::alive);
  EXPECT_FALSE(saw(b.events(), PeerEvent::Kind::down, "nodeA"));

  // The genuine "leaving" is acted on at once.
  send(genuine(MessageType::leaving));
  ASSERT_TRUE(
      b.wait_for([&](const auto& ev) { return saw(ev, PeerEvent::Kind::down, "nodeA"); }, 5s));
  EXPECT_EQ(b.state_of("nodeA"), PeerState::left);
}

TEST_F(HealthAgentTest, SetDownFromAnExternalMonitorLeavesOrDeclaresThePeerDown) {
  Node a("nodeA", options_for("nodeA", {"true"}));
  Node b("nodeB", options_for("nodeB", kStandby));
  ASSERT_NO_FATAL_FAILURE(start_and_see_each_other_up(a, b));

  // `lockferry health set-down nodeB` on nodeA: nodeB is down for nodeA, whatever its heartbeats.
  auto r = a.set_down("nodeB");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(a.state_of("nodeB"), PeerState::down);
  EXPECT_TRUE(saw(a.events(), PeerEvent::Kind::down, "nodeB"));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(a.state_of("nodeB"), PeerState::down) << "heartbeats do not undo a set-down";
  EXPECT_FALSE(a.set_down("nodeZ").ok());

  // `lockferry health set-down nodeA` on nodeA itself: it leaves, and nodeB acts at once.
  ASSERT_TRUE(a.set_down("nodeA").ok());
  ASSERT_TRUE(
      b.wait_for([&](const auto& ev) { return saw(ev, PeerEvent::Kind::down, "nodeA"); }, 2s));
  EXPECT_EQ(b.state_of("nodeA"), PeerState::left);
  // set-up: heartbeats resume and nodeB sees it come back.
  ASSERT_TRUE(a.set_up("nodeA").ok());
  ASSERT_TRUE(
      b.wait_for([&](const auto& ev) { return ev.back().kind == PeerEvent::Kind::up; }, 2s));
  EXPECT_EQ(b.state_of("nodeA"), PeerState::alive);
}

// Sends well-formed forgeries claiming `node` from `from` to `to` as fast as it can for `how_long`
// (sendmmsg batches); returns how many left.
std::uint64_t flood(const std::string& from, const udp::endpoint& to, const std::string& node,
                    std::chrono::milliseconds how_long) {
  boost::asio::io_context io;
  udp::socket s(io, udp::endpoint(boost::asio::ip::make_address(from), 0));
  const Key wrong = *Key::from_bytes(std::string(32, 'w'));
  constexpr unsigned kBatch = 64;
  std::vector<std::vector<std::uint8_t>> packets(kBatch);
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  sockaddr_in dest{};
  dest.sin_family = AF_INET;
  dest.sin_port = htons(to.port());
  dest.sin_addr.s_addr = htonl(to.address().to_v4().to_uint());
  std::uint64_t sent = 0, seq = 0;
  for (auto end = std::chrono::steady_clock::now() + how_long;
       std::chrono::steady_clock::now() < end;) {
    Heartbeat m;
    m.type = MessageType::leaving;
    m.node = node;
    m.incarnation = 7;
    m.sent_ms = clock::now_ns() / 1000000;
    m.serving = true;
    for (unsigned i = 0; i < kBatch; ++i) {
      m.seq = ++seq;
      packets[i] = encode(m, wrong);
      iov[i] = {packets[i].data(), packets[i].size()};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_name = &dest;
      msgs[i].msg_hdr.msg_namelen = sizeof dest;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    for (int round = 0; round < 8; ++round) {
      const int n = ::sendmmsg(s.native_handle(), msgs.data(), kBatch, 0);
      if (n > 0) sent += static_cast<std::uint64_t>(n);
    }
  }
  return sent;
}

TEST_F(HealthAgentTest, AFloodOfForgedHeartbeatsDelaysNoHeartbeatAndHidesNoPeer) {
  // Generous timings: the flood takes a whole core of a busy machine.
  auto slow = [&](const std::string& node, std::vector<std::string> check) {
    Options o = options_for(node, std::move(check));
    o.interval = 100ms;
    o.dead_after = 2000ms;
    return o;
  };
  Node a("nodeA", slow("nodeA", {"true"}));
  Node b("nodeB", slow("nodeB", {"true"}));
  ASSERT_NO_FATAL_FAILURE(start_and_see_each_other_up(a, b));

  // Forgeries claiming nodeB, from nodeB's own address (all on 127.0.0.1) and from another one.
  const udp::endpoint to = *parse_endpoint(addresses_["nodeA"]);
  const auto t0 = std::chrono::steady_clock::now();
  auto spoofed =
      std::async(std::launch::async, [&] { return flood("127.0.0.1", to, "nodeB", 3s); });
  auto other = std::async(std::launch::async, [&] { return flood("127.0.0.7", to, "nodeB", 3s); });
  const std::uint64_t sent = spoofed.get() + other.get();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::this_thread::sleep_for(300ms);

  const Counters c = a.counters();
  std::cout << "[ measure  ] flood " << static_cast<std::uint64_t>(sent / seconds)
            << " datagrams/s for " << seconds << " s; nodeA received " << c.received << ", dropped "
            << c.wrong_source << " (wrong source) + " << c.rate_limited
            << " (rate) before the HMAC, authenticated " << c.forged
            << " forgeries; its longest send gap " << c.max_send_gap_ms << " ms\n";
  EXPECT_FALSE(saw(b.events(), PeerEvent::Kind::down, "nodeA")) << "nodeA was silenced";
  EXPECT_FALSE(saw(a.events(), PeerEvent::Kind::down, "nodeB")) << "nodeB's heartbeats were lost";
  EXPECT_LT(c.max_send_gap_ms, 1000);
  EXPECT_EQ(c.late_sends, 0u);
  EXPECT_GT(c.wrong_source, 0u);
  EXPECT_GT(c.rate_limited, 0u);
  // The HMACs paid for are bounded by the rate limit, not by the flood.
  EXPECT_LT(c.forged, 10 * 1000 / 100 * 4 + 100u);
}

// lockferryd on nodeB: the real daemon::Cluster (automatic adoption on, so nodeB adopts when it
// is the only node left) on its own loop and thread, with a dir:// store and recognition off.
class DaemonNode {
 public:
  DaemonNode(const Options& health, const std::string& dir)
      : worker_(io_, "dir://" + dir + "/store") {
    config_.node = "nodeB";
    config_.store_url = "dir://" + dir + "/store";
    config_.statmon_dir = dir + "/sm";
    config_.recognize = "none";
    config_.automatic = true;
    config_.audit_after = std::chrono::seconds(3600);
    config_.health = health;
    auto cluster = daemon::Cluster::start(io_, config_, worker_, [] {
      return std::pair<std::uint64_t, bool>{0, false};
    });
    EXPECT_TRUE(cluster.ok()) << cluster.error().message;
    if (!cluster) return;
    cluster_ = std::move(*cluster);
    thread_ = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io_);
      io_.run_for(60s);  // failsafe
    });
  }
  ~DaemonNode() {
    if (!thread_.joinable()) return;
    boost::asio::post(io_, [this] {
      cluster_.reset();  // stops the agent and waits for a running adoption
      io_.stop();
    });
    thread_.join();
  }

  // Cluster::status() (what `lockferry health` shows), read on the daemon's loop.
  nlohmann::json status() {
    std::packaged_task<nlohmann::json()> task([this] { return cluster_->status(); });
    auto future = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return future.get();
  }
  nlohmann::json peer(const std::string& node) {
    const nlohmann::json all = status();
    for (const auto& p : all["peers"])
      if (p["node"] == node) return p;
    return nlohmann::json::object();
  }
  bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds t) {
    for (const auto until = std::chrono::steady_clock::now() + t;
         std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(20ms))
      if (pred()) return true;
    return pred();
  }

 private:
  boost::asio::io_context io_;
  daemon::Worker worker_;
  daemon::Config config_;  // Cluster reads the running configuration by reference
  std::unique_ptr<daemon::Cluster> cluster_;
  std::thread thread_;
};

// A serving primary that goes silent is adopted by the daemon of the only node left.
TEST_F(HealthAgentTest, TheDaemonAdoptsAServingPeerThatWentDown) {
  addresses_.erase("nodeC");
  Node a("nodeA", options_for("nodeA", {"true"}));
  a.start({});
  DaemonNode b(options_for("nodeB", kStandby), dir_.path());
  ASSERT_TRUE(b.wait_until([&] { return b.peer("nodeA").value("state", "") == "alive"; }, 5s))
      << b.status().dump();
  a.freeze();
  ASSERT_TRUE(b.wait_until([&] { return !b.status()["adoptions"].empty(); }, 5s))
      << b.status().dump();
  EXPECT_EQ(b.status()["adoptions"][0]["from_node"], "nodeA");
}

// A primary that says it is fenced was adopted already (it learned so from the store): when it
// then goes down, adopting it again would bump its epoch and fence its adopter out. The daemon
// leaves it alone.
TEST_F(HealthAgentTest, TheDaemonDoesNotAdoptAPeerThatSaidItIsFenced) {
  addresses_.erase("nodeC");
  Node a("nodeA", options_for("nodeA", {"true"}));
  a.set_fenced(true);
  a.start({});
  DaemonNode b(options_for("nodeB", kStandby), dir_.path());
  ASSERT_TRUE(b.wait_until(
      [&] {
        const auto p = b.peer("nodeA");
        return p.value("state", "") == "alive" && p.value("fenced", false) &&
               p.value("serving", false);
      },
      5s))
      << b.status().dump();
  a.freeze();
  ASSERT_TRUE(b.wait_until([&] { return b.peer("nodeA").value("state", "") == "dead"; }, 5s));
  // The down event reaches the daemon's loop after the agent marked the peer dead: give it time.
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(b.status()["adoptions"].empty()) << b.status().dump();
}

TEST(HealthPrefilter, AClaimIsReadWithoutTheKeyAndMalformedDatagramsAreRefused) {
  const Key key = *Key::from_bytes(std::string(32, 's'));
  Heartbeat m;
  m.node = "nodeA";
  m.incarnation = 5;
  m.seq = 9;
  m.sent_ms = 1234;
  auto bytes = encode(m, key);
  auto claim = peek(bytes);
  ASSERT_TRUE(claim.ok());
  EXPECT_EQ(claim->node, "nodeA");
  EXPECT_EQ(claim->incarnation, 5u);
  EXPECT_EQ(claim->seq, 9u);
  EXPECT_EQ(claim->sent_ms, 1234);
  bytes[0] = 'X';
  EXPECT_FALSE(peek(bytes).ok());
  EXPECT_FALSE(peek(std::vector<std::uint8_t>(10, 0)).ok());
}

TEST(HealthRateLimit, ABucketAllowsItsBurstThenItsRate) {
  TokenBucket bucket(10, 5);  // 10/s, burst 5
  std::chrono::nanoseconds t(1'000'000'000);
  int taken = 0;
  for (int i = 0; i < 100; ++i) taken += bucket.take(t) ? 1 : 0;
  EXPECT_EQ(taken, 5);
  t += std::chrono::milliseconds(500);  // five more tokens
  taken = 0;
  for (int i = 0; i < 100; ++i) taken += bucket.take(t) ? 1 : 0;
  EXPECT_EQ(taken, 5);
}

// The library says which option is wrong, typed; lockferryd's settings table names its key
// (ConfigHealth.OptionErrorsNameTheKey).
TEST(HealthOptions, ErrorsSayWhichOption) {
  Options o;
  o.enabled = true;
  o.listen = "127.0.0.1:7789";
  o.key_file = "/k";
  o.peers = {{"nodeA", "127.0.0.1:7789"}};
  auto only_self = check_options(o, "nodeA");
  ASSERT_TRUE(only_self.has_value());
  EXPECT_EQ(only_self->option, Option::peers);
  EXPECT_THAT(only_self->problem, ::testing::HasSubstr("no other node"));
  o.peers["nodeB"] = "nodeb.example:7789";
  auto bad_peer = check_options(o, "nodeA");
  ASSERT_TRUE(bad_peer.has_value());
  EXPECT_EQ(bad_peer->option, Option::peers);
  EXPECT_EQ(bad_peer->peer, "nodeB");
  EXPECT_THAT(bad_peer->problem, ::testing::HasSubstr("not an IP address"));
  o.peers["nodeB"] = "[::1]:7789";
  EXPECT_FALSE(check_options(o, "nodeA").has_value());
  o.dead_after = 600ms;
  o.interval = 500ms;
  auto fast = check_options(o, "nodeA");
  ASSERT_TRUE(fast.has_value());
  EXPECT_EQ(fast->option, Option::dead_after);
  EXPECT_EQ(fast->compared_to, Option::interval);
  o.dead_after = 3000ms;
  o.heartbeats = false;
  o.listen.clear();
  EXPECT_FALSE(check_options(o, "nodeA").has_value());  // an external manager decides: no socket
  // No key of any configuration file in what the library says.
  o.heartbeats = true;
  o.listen = "127.0.0.1:7789";
  o.peers.erase("nodeB");
  EXPECT_THAT(check_options(o, "nodeA")->problem, ::testing::Not(::testing::HasSubstr("health.")));
}

}  // namespace
}  // namespace lockferry::health
