// SPDX-License-Identifier: Apache-2.0
// Prometheus /metrics: the exposition text, the listen address, and a real scrape over loopback
// TCP from a server running on its own io_context.
#include "daemon/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "config/config.h"
#include "config/settings.h"

namespace lockferry::daemon {
namespace {

using namespace std::chrono_literals;

MetricsSample a_sample() {
  MetricsSample s;
  s.node = "nfs1";
  s.epoch = 3;
  s.capture_mode = capture::Mode::fentry;
  s.events = {.hits = 120, .emits = 40, .drops = 2, .changes = 38};
  s.recorder.records_written = 17;
  s.recorder.records_deleted = 4;
  s.recorder.bad_records = 1;
  s.recorder.store_errors = 5;
  s.recorder.reconciles = 9;
  s.recorder.reconcile_repairs = 2;
  s.monitor_records = 13;
  s.started_ns = 1'700'000'000'000'000'000;
  store::MigrationRecord m;
  m.from_node = "nfs2";
  m.to_node = "nfs1";
  m.epoch = 4;
  m.started_ns = 1'700'000'100'000'000'000;
  m.finished_ns = m.started_ns + 2'500'000'000;  // 2.5 s
  m.records = 6;
  m.result = "ok";
  s.last_migration = m;
  return s;
}

// Every sample line of the exposition, as "name{labels}" -> value text.
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.rfind(' ');
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

TEST(Metrics, ExpositionHasEveryCounterWithItsValue) {
  const auto s = samples(render_metrics(a_sample()));
  EXPECT_EQ(s.at("lockferry_capture_mode{mode=\"fentry\"}"), "1");
  EXPECT_EQ(s.at("lockferry_capture_mode{mode=\"fanotify\"}"), "0");
  EXPECT_EQ(s.at("lockferry_capture_mode{mode=\"inotify\"}"), "0");
  EXPECT_EQ(s.at("lockferry_events_hits_total"), "120");
  EXPECT_EQ(s.at("lockferry_events_emits_total"), "40");
  EXPECT_EQ(s.at("lockferry_events_drops_total"), "2");
  EXPECT_EQ(s.at("lockferry_records_written_total"), "17");
  EXPECT_EQ(s.at("lockferry_store_errors_total"), "5");
  EXPECT_EQ(s.at("lockferry_reconcile_runs_total"), "9");
  EXPECT_EQ(s.at("lockferry_reconcile_repairs_total"), "2");
  EXPECT_EQ(s.at("lockferry_monitor_records{node=\"nfs1\"}"), "13");
  EXPECT_EQ(s.at("lockferry_fenced{node=\"nfs1\"}"), "0");
  EXPECT_EQ(s.at("lockferry_fencing_epoch{node=\"nfs1\"}"), "3");
  EXPECT_EQ(s.at("lockferry_store_readable"), "1");
  EXPECT_EQ(s.at("lockferry_last_migration_duration_seconds{from=\"nfs2\",to=\"nfs1\"}"), "2.5");
  EXPECT_EQ(s.at("lockferry_last_migration_success{from=\"nfs2\",to=\"nfs1\"}"), "1");
  EXPECT_EQ(s.at("lockferry_last_migration_records{from=\"nfs2\",to=\"nfs1\"}"), "6");
  EXPECT_EQ(s.at("lockferry_start_time_seconds"), "1700000000");
}

MetricsSample a_sample_with_locks() {
  MetricsSample s = a_sample();
  LockMetrics l;
  l.events.hits = 500;
  l.events.grants = 210;
  l.events.releases = 190;
  l.events.drops = 7;
  l.events.changes = 400;
  l.events.reconciles = 4;
  l.events.reconciles_after_drops = 1;
  l.events.reconcile_locks = 25;
  l.events.reconcile_us = 1500;
  l.recorder.reconcile_repairs = 3;
  l.recorder.reconcile_provisional = 2;
  l.recorder.tables_written = 11;
  l.recorder.store_errors = 1;
  l.held = 20;
  l.last_reconcile_ns = 1'700'000'050'000'000'000;
  s.locks = l;
  return s;
}

TEST(Metrics, LockCaptureCountersAreNamedLikeTheMonitorCaptures) {
  const auto s = samples(render_metrics(a_sample_with_locks()));
  EXPECT_EQ(s.at("lockferry_lock_capture_up"), "1");
  EXPECT_EQ(s.at("lockferry_lock_events_hits_total"), "500");
  EXPECT_EQ(s.at("lockferry_lock_events_grants_total"), "210");
  EXPECT_EQ(s.at("lockferry_lock_events_releases_total"), "190");
  EXPECT_EQ(s.at("lockferry_lock_events_drops_total"), "7");
  EXPECT_EQ(s.at("lockferry_lock_events_changes_total"), "400");
  EXPECT_EQ(s.at("lockferry_lock_reconcile_runs_total"), "4");
  EXPECT_EQ(s.at("lockferry_lock_reconcile_runs_after_drops_total"), "1");
  EXPECT_EQ(s.at("lockferry_lock_reconcile_repairs_total"), "3");
  EXPECT_EQ(s.at("lockferry_lock_reconcile_provisional_total"), "2");
  EXPECT_EQ(s.at("lockferry_lock_reconcile_last_timestamp_seconds"), "1700000050");
  EXPECT_EQ(s.at("lockferry_lock_reconcile_last_duration_seconds"), "0.0015");
  EXPECT_EQ(s.at("lockferry_lock_reconcile_last_kernel_locks"), "25");
  EXPECT_EQ(s.at("lockferry_locks_held"), "20");
  EXPECT_EQ(s.at("lockferry_lock_tables_written_total"), "11");
  EXPECT_EQ(s.at("lockferry_lock_store_errors_total"), "1");
  // The monitor capture's families are unchanged next to them.
  EXPECT_EQ(s.at("lockferry_events_drops_total"), "2");
  EXPECT_EQ(s.at("lockferry_reconcile_runs_total"), "9");
}

TEST(Metrics, LockCaptureNotRunningIsOneGaugeAndNoCounters) {
  const auto s = samples(render_metrics(a_sample()));
  EXPECT_EQ(s.at("lockferry_lock_capture_up"), "0");
  EXPECT_EQ(s.count("lockferry_lock_events_drops_total"), 0u);
  EXPECT_EQ(s.count("lockferry_lock_reconcile_runs_total"), 0u);

  // Running but no reconcile yet: no timestamp of 1970.
  auto fresh = a_sample_with_locks();
  fresh.locks->last_reconcile_ns = 0;
  const auto f = samples(render_metrics(fresh));
  EXPECT_EQ(f.count("lockferry_lock_reconcile_last_timestamp_seconds"), 0u);
  EXPECT_EQ(f.at("lockferry_lock_reconcile_runs_total"), "4");
}

TEST(Metrics, EveryFamilyHasHelpAndTypeBeforeItsSamples) {
  const std::string text = render_metrics(a_sample_with_locks());
  // Exposition format 0.0.4: "# HELP name text", "# TYPE name counter|gauge", then samples of
  // that name only; sample lines are `name{label="v",...} number`.
  const std::regex help(R"(# HELP ([a-z_]+) .+)");
  const std::regex type(R"(# TYPE ([a-z_]+) (counter|gauge))");
  const std::regex sample(R"(([a-z_]+)(\{([a-z_]+="[^"\\]*",?)+\})? -?[0-9.e+]+)");
  std::istringstream in(text);
  std::string line, family;
  std::set<std::string> seen;
  int sample_lines = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, help)) {
      family = m[1];
      EXPECT_TRUE(seen.insert(family).second) << "family declared twice: " << family;
      ASSERT_TRUE(std::getline(in, line));
      ASSERT_TRUE(std::regex_match(line, m, type)) << line;
      EXPECT_EQ(m[1], family);
      if (m[2] == "counter") {
        EXPECT_TRUE(family.ends_with("_total")) << family;
      }
    } else {
      ASSERT_TRUE(std::regex_match(line, m, sample)) << "not a sample line: " << line;
      EXPECT_EQ(m[1], family) << "sample outside its family: " << line;
      ++sample_lines;
    }
  }
  EXPECT_GT(sample_lines, 20);
  EXPECT_EQ(text.back(), '\n');
}

TEST(Metrics, FencedNodeAndUnreadableStoreAndNoMigration) {
  MetricsSample s = a_sample();
  s.recorder.fenced = true;
  s.capture_mode = capture::Mode::inotify;
  s.monitor_records.reset();
  s.last_migration.reset();
  const std::string text = render_metrics(s);
  const auto m = samples(text);
  EXPECT_EQ(m.at("lockferry_fenced{node=\"nfs1\"}"), "1");
  EXPECT_EQ(m.at("lockferry_capture_mode{mode=\"inotify\"}"), "1");
  EXPECT_EQ(m.at("lockferry_store_readable"), "0");
  EXPECT_EQ(text.find("lockferry_monitor_records"), std::string::npos);
  EXPECT_EQ(text.find("lockferry_last_migration"), std::string::npos);
}

TEST(Metrics, LabelValuesAreEscaped) {
  MetricsSample s = a_sample();
  s.last_migration->from_node = "a\"b\\c\nd";
  const std::string text = render_metrics(s);
  EXPECT_NE(text.find(R"(from="a\"b\\c\nd")"), std::string::npos) << text;
}

TEST(Metrics, ListenAddresses) {
  auto v4 = parse_listen_address("127.0.0.1:9464");
  ASSERT_TRUE(v4.ok()) << v4.error().message;
  EXPECT_EQ(v4->address().to_string(), "127.0.0.1");
  EXPECT_EQ(v4->port(), 9464);
  auto v6 = parse_listen_address("[::1]:9100");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_TRUE(v6->address().is_v6());
  EXPECT_EQ(v6->port(), 9100);
  auto local = parse_listen_address("localhost:0");
  ASSERT_TRUE(local.ok()) << local.error().message;
  EXPECT_TRUE(local->address().is_loopback());
  for (const char* bad : {"9464", ":9464", "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:94x",
                          "::1:9464", "[::1:9464", "metrics.example.com:9464"}) {
    auto r = parse_listen_address(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("127.0.0.1:9464"), std::string::npos)
        << "the error should show a valid value: " << r.error().message;
  }
}

TEST(Metrics, ConfigReadsListenAndRejectsABadOne) {
  auto cfg = parse_config("node = \"n\"\n[metrics]\nlisten = \"127.0.0.1:9464\"\n", "t.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->metrics_listen, "127.0.0.1:9464");
  auto off = parse_config("node = \"n\"\n", "t.toml");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->metrics_listen, "");  // off unless configured
  auto bad = parse_config("node = \"n\"\n[metrics]\nlisten = \"9464\"\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("metrics.listen"), std::string::npos) << bad.error().message;
  auto typo = parse_config("node = \"n\"\n[metrics]\nlisten_addr = \"127.0.0.1:1\"\n", "t.toml");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.error().message.find("metrics.listen_addr"), std::string::npos);
}

// The shipped default configuration parses as it is, and still parses with every commented
// example line uncommented (so the examples an operator copies are valid too).
TEST(Metrics, ShippedDefaultConfigParsesWithAndWithoutItsExamples) {
  const std::string path = std::string(LOCKFERRY_TEST_DATA) + "/../../packaging/lockferry.toml";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  std::stringstream text;
  text << in.rdbuf();
  auto as_shipped = parse_config(text.str(), path);
  ASSERT_TRUE(as_shipped.ok()) << as_shipped.error().message;
  EXPECT_EQ(as_shipped->metrics_listen, "");

  // Example lines are "# key = value"; a section whose presence turns something on is commented
  // out whole, header ("# [health]") included.
  const std::regex example(R"(^#\s?([a-z0-9_]+\s*=.*|\[[a-z.]+\])$)");
  std::istringstream lines(text.str());
  std::string line, uncommented, section;
  std::set<std::string> keys;
  const std::regex header(R"(^#?\s?\[([a-z.]+)\]$)");
  while (std::getline(lines, line)) {
    std::smatch m, h;
    if (std::regex_match(line, h, header)) section = h[1].str();
    if (std::regex_match(line, m, example)) {
      uncommented += m[1].str() + "\n";
      const std::string key = m[1].str().substr(0, m[1].str().find_first_of(" ="));
      keys.insert(key);
      if (!section.empty() && key[0] != '[') keys.insert(section + "." + key);
    } else {
      uncommented += line + "\n";
    }
  }
  auto all = parse_config(uncommented, path + " (examples uncommented)");
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(all->metrics_listen, "127.0.0.1:9464");
  // The commented values are the defaults.
  EXPECT_EQ(all->lock_ring_buffer_kb, as_shipped->lock_ring_buffer_kb);
  EXPECT_EQ(all->lock_reconcile_interval, as_shipped->lock_reconcile_interval);
  // Every option lockferryd knows is documented in the file.
  for (const char* key : {"node",
                          "store",
                          "log_level",
                          "monitor_dirs",
                          "mode",
                          "reconcile_interval_s",
                          "pin_dir",
                          "ring_buffer_kb",
                          "socket",
                          "statmon_dir",
                          "service_ip",
                          "recognize",
                          "recognize_command",
                          "recognize_timeout_s",
                          "automatic",
                          "adopt_order",
                          "takeover_command",
                          "takeover_timeout_s",
                          "audit_after_s",
                          "enabled",
                          "managers",
                          "hook",
                          "listen",
                          "[health]",
                          "heartbeats",
                          "key_file",
                          "interval_ms",
                          "dead_after_ms",
                          "replay_window_ms",
                          "check_command",
                          "check_interval_ms",
                          "check_timeout_ms",
                          "check_failures",
                          "[health.peers]"}) {
    EXPECT_TRUE(keys.count(key)) << "packaging/lockferry.toml does not document '" << key << "'";
  }
  // ... and every key of the settings table, by its full name.
  for (const auto& s : settings_table()) {
    if (s.type == "derived") continue;
    EXPECT_TRUE(keys.count(s.key) || keys.count("[" + s.key + "]") ||
                (s.key.find('.') == std::string::npos && keys.count(s.key)))
        << "packaging/lockferry.toml does not document '" << s.key << "'";
  }
  // Keys both capture sections have, each under its own section.
  for (const char* key : {"capture.ring_buffer_kb", "capture.reconcile_interval_s",
                          "locks.ring_buffer_kb", "locks.reconcile_interval_s"})
    EXPECT_TRUE(keys.count(key)) << "packaging/lockferry.toml does not document '" << key << "'";
}

// A scrape over real TCP: GET /metrics on 127.0.0.1 with an ephemeral port.
class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = MetricsServer::start(io_, "127.0.0.1:0", [this] {
      ++renders_;
      return render_metrics(a_sample());
    });
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(*server);
    port_ = server_->local_endpoint().port();
    ASSERT_NE(port_, 0);
    thread_ = std::thread([this] { io_.run_for(30s); });  // failsafe: never outlives 30 s
  }
  void TearDown() override {
    boost::asio::post(io_, [this] { server_->stop(); });
    thread_.join();
  }

  std::string exchange(const std::string& request) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
  }

  boost::asio::io_context io_;
  std::unique_ptr<MetricsServer> server_;
  std::thread thread_;
  unsigned short port_ = 0;
  std::atomic<int> renders_{0};
};

TEST_F(MetricsServerTest, GetMetricsReturnsTheExposition) {
  const std::string response =
      exchange("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n");
  ASSERT_TRUE(response.starts_with("HTTP/1.1 200 OK\r\n")) << response;
  EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  const auto body_at = response.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  const std::string body = response.substr(body_at + 4);
  EXPECT_EQ(body, render_metrics(a_sample()));
  EXPECT_NE(response.find(fmt::format("Content-Length: {}\r\n", body.size())), std::string::npos);
  EXPECT_EQ(renders_.load(), 1);  // rendered per scrape, not cached
}

TEST_F(MetricsServerTest, HttpOneZeroAndBareNewlinesWork) {
  const std::string response = exchange("GET /metrics?x=1 HTTP/1.0\n\n");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200 OK")) << response;
  EXPECT_NE(response.find("lockferry_events_drops_total 2\n"), std::string::npos);
}

TEST_F(MetricsServerTest, HeadHasNoBodyAndOtherRequestsGetErrors) {
  const std::string head = exchange("HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200 OK")) << head;
  EXPECT_TRUE(head.ends_with("\r\n\r\n")) << head;
  EXPECT_TRUE(exchange("GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
  const std::string post = exchange("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(post.starts_with("HTTP/1.1 405")) << post;
  EXPECT_NE(post.find("Allow: GET, HEAD"), std::string::npos);
  EXPECT_TRUE(exchange("hello\r\n\r\n").starts_with("HTTP/1.1 400"));
  EXPECT_TRUE(exchange(std::string(9000, 'x')).starts_with("HTTP/1.1 431"));
  // ... and it still serves after all of that.
  EXPECT_TRUE(exchange("GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 OK"));
}

TEST_F(MetricsServerTest, SlowClientsHoldingEverySlotDoNotLockOutARealScrape) {
  // 40 clients that connect and send half a request head, more than there are slots.
  std::vector<int> slow;
  for (int i = 0; i < 40; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::write(fd, "GET /met", 8), 8);
    slow.push_back(fd);
  }
  std::this_thread::sleep_for(100ms);  // all accepted (or refused) by now
  const auto t0 = std::chrono::steady_clock::now();
  const std::string response = exchange("GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200 OK")) << "'" << response << "'";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  for (int fd : slow) ::close(fd);
}

TEST(MetricsRender, HeartbeatScheduleAndDropsAreExported) {
  MetricsSample s = a_sample();
  health::Counters c;
  c.sent = 40;
  c.max_send_gap_ms = 250;
  c.late_sends = 1;
  c.rate_limited = 1000;
  c.wrong_source = 7;
  s.health = c;
  const std::string text = render_metrics(s);
  EXPECT_NE(text.find("lockferry_heartbeat_max_send_gap_seconds 0.25\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("lockferry_heartbeat_late_sends_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("lockferry_heartbeats_dropped_total{reason=\"rate_limited\"} 1000\n"),
            std::string::npos);
  EXPECT_NE(text.find("lockferry_heartbeats_dropped_total{reason=\"wrong_source\"} 7\n"),
            std::string::npos);
  EXPECT_EQ(render_metrics(a_sample()).find("lockferry_heartbeat"), std::string::npos)
      << "nothing about heartbeats without [health]";
}

TEST(MetricsServer, ABusyPortIsAnErrorThatSaysWhatToDo) {
  boost::asio::io_context io;
  auto first = MetricsServer::start(io, "127.0.0.1:0", [] { return std::string(); });
  ASSERT_TRUE(first.ok()) << first.error().message;
  const auto port = (*first)->local_endpoint().port();
  auto second =
      MetricsServer::start(io, fmt::format("127.0.0.1:{}", port), [] { return std::string(); });
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("[metrics] listen"), std::string::npos)
      << second.error().message;
}

}  // namespace
}  // namespace lockferry::daemon
