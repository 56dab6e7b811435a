// SPDX-License-Identifier: Apache-2.0
// A migrate request (control socket or CLI) with a field of the wrong type is refused naming the
// field, instead of silently running with the default (e.g. replaying into /var/lib/nfs/sm).
#include <gtest/gtest.h>

#include "config/config.h"
#include "config/migrate_defaults.h"
#include "control/protocol.h"

namespace lockferry::control {
namespace {

failover::MigrateOptions defaults() {
  auto cfg = daemon::parse_config("node = \"nodeB\"\n", "test.toml");
  EXPECT_TRUE(cfg.ok());
  auto options = daemon::migrate_defaults(*cfg);
  EXPECT_TRUE(options.ok());
  return *options;
}

TEST(MigrateRequest, AFieldOfTheWrongTypeIsAnErrorNamingIt) {
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, nlohmann::json>>{{"statmon_dir", 7},
                                                           {"node", true},
                                                           {"service_ip", nlohmann::json::array()},
                                                           {"recognize", 1},
                                                           {"state_dir", 2.5},
                                                           {"timeout_s", "60"},
                                                           {"retry_minutes", 1.5}}) {
    nlohmann::json request{{"command", "migrate"}, {"from", "nodeA"}, {key, value}};
    auto options = migrate_options(request, defaults());
    ASSERT_FALSE(options.ok()) << request.dump();
    EXPECT_NE(options.error().message.find(key), std::string::npos) << options.error().message;
  }
}

TEST(MigrateRequest, AbsentOrNullFieldsTakeTheDefaults) {
  nlohmann::json request{{"command", "migrate"}, {"from", "nodeA"}, {"statmon_dir", nullptr}};
  auto options = migrate_options(request, defaults());
  ASSERT_TRUE(options.ok()) << options.error().message;
  EXPECT_EQ(options->statmon_dir, "/var/lib/nfs/sm");
  EXPECT_EQ(options->to_node, "nodeB");
}

}  // namespace
}  // namespace lockferry::control
