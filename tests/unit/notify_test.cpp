// SPDX-License-Identifier: Apache-2.0
// The built-in notifier: the RPC bytes it sends, statd's state number and sm/ -> sm.bak/
// bookkeeping as nfs-utils keeps them, the retry waits, and a whole run against real UDP
// receivers on loopback addresses (one acknowledging client, one whose rpcbind has no statd,
// one that never answers).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "dir_store_test_util.h"
#include "notify/notifier.h"
#include "notify/resolve.h"
#include "notify/rpc_xdr.h"
#include "notify/statd_files.h"

namespace lockferry::notify {
namespace {

using testing::TempDir;

Bytes words(std::initializer_list<std::uint32_t> ws) {
  Bytes out;
  for (auto w : ws)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(w >> s));
  return out;
}

TEST(NotifyRpc, SmNotifyIsNsmProcSixWithThePaddedNameAndTheState) {
  Bytes expected = words({0x1234, 0, 2, 100024, 1, 6, 0, 0, 0, 0, 5});
  for (char c : std::string("lfsrv\0\0\0", 8)) expected.push_back(static_cast<std::uint8_t>(c));
  Bytes state = words({7});
  expected.insert(expected.end(), state.begin(), state.end());
  EXPECT_EQ(encode_sm_notify_call(0x1234, "lfsrv", 7), expected);
}

TEST(NotifyRpc, GetportAsksRpcbindTwoForNsmOverUdp) {
  EXPECT_EQ(encode_getport_call(9, kNsmProgram, kNsmVersion),
            words({9, 0, 2, 100000, 2, 3, 0, 0, 0, 0, 100024, 1, 17, 0}));
}

TEST(NotifyRpc, AnAcceptedReplyGivesItsXidAndResults) {
  const Bytes reply = words({77, 1, 0, 0, 0, 0, 32765});
  auto parsed = parse_reply(reply);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->xid, 77u);
  auto port = parse_getport_result(parsed->results);
  ASSERT_TRUE(port);
  EXPECT_EQ(*port, 32765);
  EXPECT_EQ(*reply_xid(reply), 77u);
}

TEST(NotifyRpc, DeniedUnrunAndTruncatedRepliesAreRefused) {
  EXPECT_FALSE(parse_reply(words({1, 1, 1, 0, 0})));          // MSG_DENIED
  EXPECT_FALSE(parse_reply(words({1, 1, 0, 0, 0, 1})));       // PROG_UNAVAIL
  EXPECT_FALSE(parse_reply(words({1, 1, 0, 0, 8})));          // verifier past the end
  EXPECT_FALSE(parse_reply(words({1, 0, 2, 100024, 1, 6})));  // a call, not a reply
  EXPECT_FALSE(parse_getport_result({}));
}

TEST(NotifyState, BumpedLikeStatdKeepsItOdd) {
  EXPECT_EQ(next_nsm_state(std::nullopt), 3);  // statd: missing file -> 1, then += 2
  EXPECT_EQ(next_nsm_state(5), 7);
  EXPECT_EQ(next_nsm_state(6), 9);  // an even number read is made odd first
}

struct StateDir {
  TempDir tmp;
  std::string dir = tmp / "nfs";
  files::Fd fd;
  StateDir() {
    std::filesystem::create_directories(dir + "/sm");
    fd = files::Fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  void record(const std::string& sub, const std::string& name) const {
    std::ofstream(dir + "/" + sub + "/" + name)
        << "0100007f 000186b5 00000004 00000010 " << std::string(32, '0') << " " << name
        << " server\n";
  }
  std::int32_t state_on_disk() const {
    std::int32_t v = 0;
    std::ifstream(dir + "/state", std::ios::binary).read(reinterpret_cast<char*>(&v), sizeof v);
    return v;
  }
};

TEST(NotifyState, TheStateFileIsAHostOrderIntBumpedOnEveryRun) {
  StateDir d;
  EXPECT_EQ(*bump_nsm_state(d.fd.get(), d.dir, {::getuid(), ::getgid()}), 3);
  EXPECT_EQ(d.state_on_disk(), 3);
  EXPECT_EQ(*bump_nsm_state(d.fd.get(), d.dir, {::getuid(), ::getgid()}), 5);
  EXPECT_EQ(std::filesystem::file_size(d.dir + "/state"), 4u);
}

TEST(NotifyBookkeeping, RetiredClientsMoveToSmBakAndLeaveItWhenTheyAnswer) {
  StateDir d;
  d.record("sm", "10.0.0.1");
  d.record("sm", "10.0.0.2");
  d.record("sm", "not-replayed");
  auto moved = retire_clients(d.fd.get(), d.dir, {"10.0.0.1", "10.0.0.2"});
  ASSERT_TRUE(moved) << moved.error().message;
  EXPECT_EQ(*moved, 2u);
  EXPECT_TRUE(std::filesystem::exists(d.dir + "/sm.bak/10.0.0.1"));
  EXPECT_TRUE(std::filesystem::exists(d.dir + "/sm/not-replayed"));  // only the replayed ones
  files::Fd bak(::open((d.dir + "/sm.bak").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(forget_notified(bak.get(), "10.0.0.1"));
  ASSERT_TRUE(forget_notified(bak.get(), "10.0.0.1"));  // already gone is fine
  EXPECT_EQ(testing::dir_names(d.dir + "/sm.bak"), std::vector<std::string>{"10.0.0.2"});
  EXPECT_FALSE(retire_clients(d.fd.get(), d.dir, {"../escape"}));
}

TEST(NotifyBackoff, DoublesUpToTheMaximum) {
  Backoff b{std::chrono::milliseconds(250), std::chrono::milliseconds(4000)};
  EXPECT_EQ(b.after(1).count(), 250);
  EXPECT_EQ(b.after(2).count(), 500);
  EXPECT_EQ(b.after(5).count(), 4000);
  EXPECT_EQ(b.after(1000).count(), 4000);
}

TEST(NotifyResolve, NamesAreLookedUpSeveralAtOnceAndKeepTheirOrder) {
  // 24 names that each take 100 ms to look up: one after another that is 2.4 s; 8 at a time 0.3 s.
  std::vector<std::string> clients;
  for (int i = 0; i < 24; ++i) clients.push_back("client" + std::to_string(i) + ".example");
  clients.insert(clients.begin() + 3, "192.0.2.7");  // an address: no lookup
  clients.push_back("gone.example");
  std::mutex mutex;
  int running = 0, most = 0, lookups = 0;
  auto slow = [&](const std::string& name) -> Result<boost::asio::ip::address_v4> {
    {
      std::lock_guard lock(mutex);
      ++lookups;
      most = std::max(most, ++running);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::lock_guard lock(mutex);
    --running;
    if (name == "gone.example") return make_error("cannot resolve {}: no such name", name);
    const auto n = static_cast<unsigned>(std::stoi(name.substr(6)));
    return boost::asio::ip::address_v4(0x0A000000u + n);  // 10.0.0.n
  };
  const auto started = std::chrono::steady_clock::now();
  auto resolved = resolve_clients(clients, {}, 8, slow);
  const auto took = std::chrono::steady_clock::now() - started;
  // Sequential: 2.5 s. The margin is for a loaded machine.
  EXPECT_LT(took, std::chrono::milliseconds(2000)) << "looked up one after another";
  EXPECT_LE(most, 8) << "more than 8 lookups at a time";
  EXPECT_GE(most, 2) << "one lookup at a time";
  EXPECT_EQ(lookups, 25) << "the address was not looked up";
  ASSERT_EQ(resolved.targets.size(), 25u);
  EXPECT_EQ(resolved.targets[0].client, "client0.example");
  EXPECT_EQ(resolved.targets[0].address.to_string(), "10.0.0.0");
  EXPECT_EQ(resolved.targets[3].client, "192.0.2.7");
  EXPECT_EQ(resolved.targets[3].address.to_string(), "192.0.2.7");
  EXPECT_EQ(resolved.targets[24].client, "client23.example");
  EXPECT_EQ(resolved.targets[24].address.to_string(), "10.0.0.23");
  ASSERT_EQ(resolved.unresolved.size(), 1u);
  EXPECT_EQ(resolved.unresolved[0].client, "gone.example");
  EXPECT_EQ(resolved.unresolved[0].status, ClientStatus::unreachable);
  EXPECT_NE(resolved.unresolved[0].error.find("no such name"), std::string::npos);
}

TEST(NotifyResolve, ANameThatDoesNotResolveIsTriedAsItsRecordsMonName) {
  // statd named the files by DNS names; at failover time they do not resolve here, but the
  // records' mon_names (what the clients' lock managers sent) are addresses.
  auto dns_down = [](const std::string& name) -> Result<boost::asio::ip::address_v4> {
    if (name == "client1.example" || name == "client2.example")
      return make_error("cannot resolve {}: temporary failure", name);
    return resolve_client(name);
  };
  auto resolved = resolve_clients({"client1.example", "client2.example"},
                                  {"192.0.2.21", "client2.example"}, 4, dns_down);
  ASSERT_EQ(resolved.targets.size(), 1u);
  EXPECT_EQ(resolved.targets[0].client, "client1.example") << "reported (and retired) by file name";
  EXPECT_EQ(resolved.targets[0].address.to_string(), "192.0.2.21");
  ASSERT_EQ(resolved.unresolved.size(), 1u);
  EXPECT_EQ(resolved.unresolved[0].client, "client2.example");
}

// Loopback hosts: 127.0.0.2 has statd, 127.0.0.3's rpcbind has none; both answer rpcbind and
// statd on one UDP port each (their sockets are bound to their own address, so replies come
// from it). 127.0.0.4 has nothing and never answers.
class LoopbackFleet {
 public:
  LoopbackFleet() {
    for (const char* ip : {"127.0.0.2", "127.0.0.3"}) fds_.push_back(bind_to(ip, port_));
    thread_ = std::thread([this] { serve(); });
  }
  ~LoopbackFleet() {
    stop_ = true;
    thread_.join();
    for (int fd : fds_) ::close(fd);
  }
  std::uint16_t port() const { return port_; }
  int notifies() const { return notifies_; }

 private:
  int bind_to(const char* ip, std::uint16_t& port) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip, &a.sin_addr);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << ip;
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
  }
  void serve() {
    std::vector<pollfd> p;
    for (int fd : fds_) p.push_back({fd, POLLIN, 0});
    while (!stop_) {
      if (::poll(p.data(), p.size(), 20) <= 0) continue;
      for (std::size_t i = 0; i < p.size(); ++i)
        if (p[i].revents & POLLIN) answer(p[i].fd, i == 0);
    }
  }
  void answer(int fd, bool has_statd) {
    std::uint8_t buf[1500];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 44) return;
    auto word = [&](int i) {
      return std::uint32_t{buf[4 * i]} << 24 | buf[4 * i + 3] |
             std::uint32_t{buf[4 * i + 1]} << 16 | std::uint32_t{buf[4 * i + 2]} << 8;
    };
    Bytes reply = words({word(0), 1, 0, 0, 0, 0});
    if (word(3) == kPmapProgram) {
      Bytes port = words({has_statd ? port_ : 0u});
      reply.insert(reply.end(), port.begin(), port.end());
    } else {
      ++notifies_;
    }
    ::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }

  std::uint16_t port_ = 0;
  std::vector<int> fds_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> notifies_{0};
};

TEST(Notifier, EveryClientGetsAResultAndOnlyTheAcknowledgedLeaveSmBak) {
  StateDir d;
  for (const char* c : {"127.0.0.2", "127.0.0.3", "127.0.0.4", "no-such-host.invalid"})
    d.record("sm", c);
  LoopbackFleet fleet;
  NotifyOptions o;
  o.state_dir_fd = d.fd.get();
  o.state_dir = d.dir;
  o.service_ip = "127.0.0.1";
  o.clients = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "no-such-host.invalid"};
  o.deadline = std::chrono::milliseconds(800);
  o.backoff = Backoff{std::chrono::milliseconds(50), std::chrono::milliseconds(200)};
  o.reserved_port = false;
  o.rpcbind_port = fleet.port();
  auto report = notify_clients(o);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->state, 3);
  EXPECT_EQ(d.state_on_disk(), 3);
  std::map<std::string, ClientResult> by_name;
  for (const auto& c : report->clients) by_name[c.client] = c;
  ASSERT_EQ(by_name.size(), 4u);
  EXPECT_EQ(by_name["127.0.0.2"].status, ClientStatus::acknowledged);
  EXPECT_GT(by_name["127.0.0.2"].acknowledged_ns, 0);
  EXPECT_GE(by_name["127.0.0.2"].acknowledged_ns, by_name["127.0.0.2"].notified_ns);
  EXPECT_EQ(by_name["127.0.0.3"].status, ClientStatus::unreachable);
  EXPECT_NE(by_name["127.0.0.3"].error.find("no NSM"), std::string::npos);
  EXPECT_EQ(by_name["127.0.0.4"].status, ClientStatus::unreachable);
  EXPECT_EQ(by_name["no-such-host.invalid"].status, ClientStatus::unreachable);
  EXPECT_EQ(report->acknowledged, 1u);
  EXPECT_EQ(report->unreachable, 3u);
  EXPECT_EQ(fleet.notifies(), 1);
  EXPECT_EQ(testing::dir_names(d.dir + "/sm.bak"),
            (std::vector<std::string>{"127.0.0.3", "127.0.0.4", "no-such-host.invalid"}));
  EXPECT_TRUE(testing::dir_names(d.dir + "/sm").empty());
}

TEST(Notifier, AServiceIpThisHostDoesNotHaveIsAnErrorNotASilentSend) {
  StateDir d;
  d.record("sm", "127.0.0.2");
  NotifyOptions o;
  o.state_dir_fd = d.fd.get();
  o.state_dir = d.dir;
  o.service_ip = "192.0.2.77";
  o.clients = {"127.0.0.2"};
  o.reserved_port = false;
  auto report = notify_clients(o);
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().message.find("service IP 192.0.2.77"), std::string::npos);
  EXPECT_EQ(testing::dir_names(d.dir + "/sm"), std::vector<std::string>{"127.0.0.2"});  // untouched
  EXPECT_FALSE(std::filesystem::exists(d.dir + "/state"));
}

}  // namespace
}  // namespace lockferry::notify
