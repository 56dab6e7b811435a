// SPDX-License-Identifier: Apache-2.0
// lockferryd's cluster side: the health agent (heartbeats, local check, set-down/set-up) and
// what the daemon does when a peer goes down — adopt it when this node is the chosen adopter.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "daemon/config.h"
#include "failover/audit.h"
#include "failover/auto_adopt.h"
#include "health/agent.h"
#include "store/store.h"

namespace lockferry::daemon {

class Cluster {
 public:
  // Starts the health agent from config.health (which must be enabled).
  // `after_takeover` runs on the loop between an automatic takeover and replay (the daemon
  // rescans for lock managers there, so the new NFS server's reclaim grants are captured).
  static Result<std::unique_ptr<Cluster>> start(boost::asio::io_context& io, const Config& config,
                                                health::Agent::SelfState self_state,
                                                std::function<void()> after_takeover = nullptr);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // {"command":"health"[, "action":"status"|"set-down"|"set-up", "node":N, "reason":R]}
  nlohmann::json handle(const nlohmann::json& request);
  nlohmann::json status() const;
  // Stops heartbeats and checks; waits for a running adoption to finish.
  void stop();
  // SIGHUP: the failover settings (automatic, adopt_order, takeover, recognition, ...) of
  // `config` apply from the next adoption on. [health] itself needs a restart (see reload.h).
  void reload(const Config& config) { config_ = config; }

 private:
  Cluster(boost::asio::io_context& io, const Config& config);
  void on_peer_event(const health::PeerEvent& event);
  void adopt(const std::string& node, const std::string& reason);
  // After an adoption: the final reclaim audit once the grace period is over (audit_after).
  void schedule_audit(const std::string& node);

  boost::asio::io_context& io_;
  Config config_;
  std::unique_ptr<health::Agent> agent_;
  std::unique_ptr<failover::AutoAdopter> adopter_;
  std::function<void()> after_takeover_;
  std::unique_ptr<store::Store> store_;  // this loop's own connection, for the audits
  std::map<std::string, std::unique_ptr<boost::asio::steady_timer>> audit_timers_;
  std::map<std::string, failover::AuditReport> audits_;  // the final audit per adopted node
};

}  // namespace lockferry::daemon
