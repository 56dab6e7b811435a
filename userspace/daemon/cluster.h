// SPDX-License-Identifier: Apache-2.0
// lockferryd's cluster side: the health agent (heartbeats, local check, set-down/set-up) on a
// thread of its own, and what the daemon does when a peer goes down — adopt it when this node is
// the chosen adopter. Nothing the daemon's loop does (a long request, a slow store, a big
// reconcile) can delay a heartbeat or a deadline check: they never run on that loop.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "config/config.h"
#include "daemon/worker.h"
#include "failover/audit.h"
#include "failover/auto_adopt.h"
#include "failover/client_report.h"
#include "health/agent.h"
#include "store/store.h"

namespace lockferry::daemon {

class Cluster {
 public:
  // Starts the health agent from config.health (which must be enabled) on its own thread.
  // `self_state` is called on the daemon's loop (`io`) and its answer handed to the agent's thread.
  // `after_takeover` runs on the loop between an automatic takeover and replay (the daemon
  // rescans for lock managers there, so the new NFS server's reclaim grants are captured).
  // The reclaim audits after an adoption run on `worker`. `config` is the daemon's running
  // configuration, read at each use and not copied: a SIGHUP that changes its failover settings
  // (automatic, adopt_order, takeover, recognition, ...) changes them for the next adoption, and
  // [health] itself needs a restart (see settings.cpp). It must outlive the Cluster.
  static Result<std::unique_ptr<Cluster>> start(boost::asio::io_context& io, const Config& config,
                                                Worker& worker, health::Agent::SelfState self_state,
                                                std::function<void()> after_takeover = nullptr);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // {"command":"health"[, "action":"status"|"set-down"|"set-up", "node":N, "reason":R]}
  // On the daemon's loop.
  nlohmann::json handle(const nlohmann::json& request);
  nlohmann::json status() const;
  health::Counters counters() const { return agent_->counters(); }
  // The per-client report of the latest final reclaim audit (metrics); empty before the first.
  std::optional<failover::ClientReport> last_client_report() const;
  // Stops heartbeats and checks; waits for a running adoption to finish.
  void stop();

 private:
  Cluster(boost::asio::io_context& io, const Config& config, Worker& worker);
  // Refreshes what the agent's heartbeats say about this node (epoch, fenced), on the loop.
  void refresh_self_state();
  void on_peer_event(const health::PeerEvent& event);
  void adopt(const std::string& node, const std::string& reason);
  // After an adoption: the final reclaim audit once the grace period is over (audit_after).
  void schedule_audit(const std::string& node);
  void log_audit(const std::string& node, Result<failover::FailoverAudit> report);

  boost::asio::io_context& io_;
  const Config& config_;  // the daemon's; see start()
  Worker& worker_;
  bool stopped_ = false;
  // The agent's own loop and thread: heartbeats, deadlines, the health check.
  boost::asio::io_context health_io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> health_work_;
  std::thread health_thread_;
  health::Agent::SelfState self_state_;  // the daemon's, called on io_
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<bool> fenced_{false};
  boost::asio::steady_timer self_state_timer_;
  std::unique_ptr<health::Agent> agent_;
  std::unique_ptr<failover::AutoAdopter> adopter_;
  std::function<void()> after_takeover_;
  std::map<std::string, std::unique_ptr<boost::asio::steady_timer>> audit_timers_;
  std::map<std::string, failover::FailoverAudit> audits_;  // the final audit per adopted node
  std::string last_audit_;                                 // the node audited last
};

}  // namespace lockferry::daemon
