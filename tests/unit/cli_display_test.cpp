// SPDX-License-Identifier: Apache-2.0
// The real `lockferry` binary against a dir:// store holding hostile text - lock paths, NFS client
// names and a migration result with terminal escape sequences and new lines, as a client, a local
// user or another node can put there: the tables print them escaped (no raw control byte, no
// forged line), and --json still gives the exact bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "dir_store_test_util.h"

namespace lockferry {
namespace {

using testing::TempDir;

const std::string kLockferry = std::string(LOCKFERRY_BINARY_DIR) + "/userspace/lockferry";

// Sets the window title, clears the screen, homes the cursor, and prints a fake verdict.
// The last escape is C1 CSI as UTF-8 (U+009B), which some terminals take like ESC [.
const std::string kHostile =
    "\x1b]0;pwned\x07\x1b[2J\x1b[H\nOK: 100 % reclaimed\r\xc2\x9b"
    "31m";

// stdout of `lockferry ARGS` (stderr dropped), and its exit status.
std::pair<std::string, int> run_cli(const std::string& args) {
  const std::string command =
      kLockferry + " -c /nonexistent/lockferry.toml " + args + " 2>/dev/null";
  std::FILE* p = ::popen(command.c_str(), "r");
  if (!p) return {"", -1};
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  return {out, ::pclose(p)};
}

// C0 controls other than the table's own new lines, DEL, and C1 controls as UTF-8.
bool has_raw_controls(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xe0) == 0x80)
      return true;
  }
  return false;
}

// Lines of output (a forged "OK: ..." line would be one more).
std::size_t lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

class CliDisplay : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = testing::open_at(tmp / "store");
    ASSERT_NE(store, nullptr);
    LockRecord l;
    l.node = "nodeA";
    l.manager_comm = "ganesha.nfsd";
    l.manager_pid = 100;
    l.path = "/export/a" + kHostile;
    l.start = 0;
    l.end = 99;
    l.type = "write";
    l.nlm_host = "client" + kHostile;
    ASSERT_TRUE(store->put_locks("nodeA", 0, {l}).ok());
    ASSERT_TRUE(store
                    ->put_migration(
                        {"nodeA", "nodeB", 1, 1, 2, 0, "192.0.2.10", "none", "failed" + kHostile})
                    .ok());
    url = "dir://" + tmp.path() + "/store";
  }
  TempDir tmp;
  std::string url;
};

TEST_F(CliDisplay, LockTablesShowHostilePathsAndClientsEscaped) {
  auto [out, status] = run_cli("locks --store " + url + " --node nodeA");
  ASSERT_EQ(status, 0) << out;
  EXPECT_FALSE(has_raw_controls(out)) << out;
  EXPECT_EQ(lines(out), 2u) << out;  // the header and one lock
  EXPECT_NE(
      out.find(
          "/export/a\\x1b]0;pwned\\x07\\x1b[2J\\x1b[H\\x0aOK: 100 % reclaimed\\x0d\\u{009b}31m"),
      std::string::npos)
      << out;
  // --json keeps the exact text.
  auto [json_out, json_status] = run_cli("locks --store " + url + " --node nodeA --json");
  ASSERT_EQ(json_status, 0);
  const auto locks = nlohmann::json::parse(json_out);
  ASSERT_EQ(locks.size(), 1u);
  EXPECT_EQ(locks[0]["path"].get<std::string>(), "/export/a" + kHostile);
  EXPECT_EQ(locks[0]["nlm_host"].get<std::string>(), "client" + kHostile);
}

TEST_F(CliDisplay, AuditAndMigrationTablesToo) {
  auto [audit, audit_status] = run_cli("audit --store " + url + " --from nodeA --node nodeB");
  ASSERT_EQ(audit_status, 0) << audit;
  EXPECT_FALSE(has_raw_controls(audit)) << audit;
  EXPECT_NE(audit.find("client\\x1b]0;pwned"), std::string::npos) << audit;
  auto [migrations, status] = run_cli("migrations --store " + url);
  ASSERT_EQ(status, 0) << migrations;
  EXPECT_FALSE(has_raw_controls(migrations)) << migrations;
  EXPECT_EQ(lines(migrations), 2u) << migrations;
  EXPECT_NE(migrations.find("failed\\x1b]0;pwned"), std::string::npos) << migrations;
}

// Kernel lockd's attribution: which client address, through which service IP.
TEST(CliAttribution, LocksAndTheAuditNameTheServiceIpEachLockCameThrough) {
  TempDir tmp;
  auto store = testing::open_at(tmp / "store");
  ASSERT_NE(store, nullptr);
  LockRecord l;
  l.node = "nodeA";
  l.manager_comm = "lockd";
  l.manager_pid = 162;
  l.path = "/srv/export/f1.dat";
  l.end = 99;
  l.type = "write";
  l.nlm_host = "client1";
  l.client_addr = "10.77.1.2";
  l.server_addr = "192.0.2.11";
  ASSERT_TRUE(store->put_locks("nodeA", 0, {l}).ok());
  const std::string url = "dir://" + tmp.path() + "/store";
  auto [out, status] = run_cli("locks --store " + url + " --node nodeA");
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("client client1 (10.77.1.2) via 192.0.2.11"), std::string::npos) << out;
  auto [json_out, json_status] = run_cli("locks --store " + url + " --node nodeA --json");
  ASSERT_EQ(json_status, 0);
  const auto locks = nlohmann::json::parse(json_out);
  EXPECT_EQ(locks.at(0)["client_addr"].get<std::string>(), "10.77.1.2");
  EXPECT_EQ(locks.at(0)["server_addr"].get<std::string>(), "192.0.2.11");
  auto [audit, audit_status] = run_cli("audit --store " + url + " --from nodeA --node nodeB");
  ASSERT_EQ(audit_status, 0) << audit;
  EXPECT_NE(audit.find("VIA"), std::string::npos) << audit;
  EXPECT_NE(audit.find("192.0.2.11"), std::string::npos) << audit;
  auto [audit_json, audit_json_status] =
      run_cli("audit --store " + url + " --from nodeA --node nodeB --json");
  ASSERT_EQ(audit_json_status, 0) << audit_json;
  const auto a = nlohmann::json::parse(audit_json);
  EXPECT_EQ(a["locks"].at(0)["server_addr"].get<std::string>(), "192.0.2.11");
  EXPECT_EQ(a["locks"].at(0)["client_addr"].get<std::string>(), "10.77.1.2");
}

}  // namespace
}  // namespace lockferry
