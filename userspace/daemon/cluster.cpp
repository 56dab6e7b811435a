// SPDX-License-Identifier: Apache-2.0
// Health events -> automatic adoption; see cluster.h.
#include "daemon/cluster.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <future>

#include "common/clock.h"
#include "config/migrate_defaults.h"
#include "control/protocol.h"
#include "daemon/counter_values.h"
#include "failover/adoption_decision.h"

namespace lockferry::daemon {
namespace {

nlohmann::json to_json(const failover::Adoption& a) {
  nlohmann::json notify_results = nlohmann::json::array();
  for (const auto& c : a.notify) notify_results.push_back(control::to_json(c));
  return {{"from_node", a.from_node},
          {"reason", a.reason},
          {"detected", clock::format_ns(a.detected_ns)},
          {"finished", a.finished_ns ? clock::format_ns(a.finished_ns) : std::string()},
          {"duration_ms", a.finished_ns ? (a.finished_ns - a.detected_ns) / 1'000'000 : 0},
          {"running", a.running},
          {"ok", a.ok},
          {"message", a.message},
          {"epoch", a.epoch},
          {"records", a.records},
          {"notified", a.notified},
          {"not_notified", a.not_notified},
          // As `lockferry migrate --json` reports them: how each client was told, and the
          // per-client report as the adoption ended.
          {"recognize",
           {{"method", failover::to_string(a.recognize)},
            {"nsm_state", a.nsm_state},
            {"clients", notify_results}}},
          {"client_report", control::to_json(a.clients)}};
}

}  // namespace

Cluster::Cluster(boost::asio::io_context& io, const Config& config, Worker& worker)
    : io_(io),
      config_(config),
      worker_(worker),
      health_work_(boost::asio::make_work_guard(health_io_)),
      self_state_timer_(io) {}

Cluster::~Cluster() { stop(); }

Result<std::unique_ptr<Cluster>> Cluster::start(boost::asio::io_context& io, const Config& config,
                                                Worker& worker, health::Agent::SelfState self_state,
                                                std::function<void()> after_takeover) {
  std::unique_ptr<Cluster> cluster(new Cluster(io, config, worker));
  cluster->after_takeover_ = std::move(after_takeover);
  Cluster* self = cluster.get();
  cluster->adopter_ = std::make_unique<failover::AutoAdopter>(
      config.store_url, [&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); });
  cluster->self_state_ = std::move(self_state);
  cluster->refresh_self_state();
  auto agent = health::Agent::start(
      cluster->health_io_, config.node, config.health,
      // On the agent's thread: acting on it (an adoption) is the daemon loop's business.
      [self](const health::PeerEvent& event) {
        boost::asio::post(self->io_, [self, event] { self->on_peer_event(event); });
      },
      [self] {
        return std::pair<std::uint64_t, bool>{self->epoch_.load(), self->fenced_.load()};
      });
  if (!agent) return make_error("cannot start the health agent: {}", agent.error().message);
  cluster->agent_ = std::move(*agent);
  // The thread starts once the loop runs: after lockferryd dropped its capabilities, which are per
  // thread (a thread started now would keep them all, and pass them to the check command).
  boost::asio::post(io, [self] {
    if (self->stopped_) return;
    self->health_thread_ = std::thread([self] {
      try {
        self->health_io_.run();
      } catch (const std::exception& e) {
        // Without heartbeats the peers adopt this node: say why loudly, let systemd restart it.
        spdlog::critical("health: the heartbeat thread failed: {}; lockferryd exits", e.what());
        std::abort();
      }
    });
  });
  if (config.automatic)
    spdlog::info(
        "failover: automatic adoption on; adopt order {}; takeover command {}",
        config.adopt_order.empty() ? std::string("(by node name)")
                                   : fmt::format("{}", fmt::join(config.adopt_order, ", ")),
        config.takeover_command.empty() ? std::string("none (the service is taken by someone else)")
                                        : process::to_display(config.takeover_command));
  return cluster;
}

void Cluster::stop() {
  stopped_ = true;
  for (auto& [node, timer] : audit_timers_) timer->cancel();
  self_state_timer_.cancel();
  if (health_thread_.joinable()) {
    boost::asio::post(health_io_, [this] {
      if (agent_) agent_->stop();  // says "stopping" to the peers on its own socket
      health_io_.stop();
    });
    health_work_.reset();
    health_thread_.join();
  } else if (agent_) {
    agent_->stop();  // the loop never ran: nothing else touches the agent
  }
  if (adopter_) adopter_->join();
}

void Cluster::refresh_self_state() {
  if (self_state_) {
    const auto [epoch, fenced] = self_state_();
    epoch_ = epoch;
    fenced_ = fenced;
  }
  // Often enough that the next heartbeat carries a change; cheap (two counters).
  self_state_timer_.expires_after(std::min(config_.health.interval, health::Millis(100)));
  self_state_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) refresh_self_state();
  });
}

void Cluster::on_peer_event(const health::PeerEvent& event) {
  if (stopped_ || event.kind != health::PeerEvent::Kind::down) return;
  const auto peer = agent_->peer(event.node);
  const failover::PeerDown down{event.node, event.was_serving, peer && peer->fenced};
  const failover::AdoptionPolicy policy{config_.node, config_.automatic, config_.adopt_order};
  const auto decision = failover::decide_adoption(
      down, policy, agent_->choose_adopter(event.node, config_.adopt_order));
  using Outcome = failover::AdoptionDecision::Outcome;
  switch (decision.outcome) {
    case Outcome::adopt_here:
      adopt(event.node, event.reason);
      return;
    case Outcome::manual:
      spdlog::warn("failover: {}", decision.message);
      return;
    case Outcome::no_adopter:
      spdlog::error("failover: {} (this node: {})", decision.message, agent_->local().reason);
      return;
    case Outcome::not_serving:
    case Outcome::already_adopted:
    case Outcome::other_adopter:
      spdlog::info("failover: {}", decision.message);
      return;
  }
}

void Cluster::adopt(const std::string& node, const std::string& reason) {
  auto options = migrate_defaults(config_);
  if (!options) {
    spdlog::error("failover: cannot adopt {}: {}", node, options.error().message);
    return;
  }
  options->from_node = node;
  options->takeover_command = config_.takeover_command;
  options->takeover_timeout = config_.takeover_timeout;
  if (after_takeover_) {
    // From the adoption's thread: run it on the loop and wait (bounded) until it ran.
    options->after_takeover = [this] {
      auto done = std::make_shared<std::promise<void>>();
      auto ran = done->get_future();
      boost::asio::post(io_, [this, done] {
        after_takeover_();
        done->set_value();
      });
      if (ran.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
        spdlog::warn("failover: the loop did not run the post-takeover step within 5 s; going on");
    };
  }
  spdlog::warn("failover: ADOPTING {} ({}): fence, take over, replay, recognise", node, reason);
  const bool started = adopter_->adopt(
      std::move(*options), reason,
      [this](const failover::Adoption& a, const Result<failover::MigrateReport>& report) {
        const auto ms = (a.finished_ns - a.detected_ns) / 1'000'000;
        if (!report) {
          spdlog::error("failover: adopting {} failed after {} ms: {}", a.from_node, ms,
                        report.error().message);
          return;
        }
        schedule_audit(a.from_node);
        spdlog::log(report->ok ? spdlog::level::info : spdlog::level::err,
                    "failover: adopted {} at epoch {} in {} ms (from detection): {} records, {} "
                    "notified, {} not notified: {}",
                    a.from_node, a.epoch, ms, a.records, a.notified.size(), a.not_notified.size(),
                    a.message);
      });
  if (!started) spdlog::info("failover: an adoption of {} is already running here", node);
}

void Cluster::schedule_audit(const std::string& node) {
  auto& timer = audit_timers_[node];
  if (!timer) timer = std::make_unique<boost::asio::steady_timer>(io_);
  timer->expires_after(config_.audit_after);
  spdlog::info(
      "failover: reclaim audit of {} in {} s, when the grace period is over "
      "(`lockferry audit --from {}` shows it now)",
      node, config_.audit_after.count(), node);
  timer->async_wait([this, node](boost::system::error_code ec) {
    if (ec) return;
    // Comparing two big lock tables takes a while: on the worker, the result back on the loop.
    auto defaults = migrate_defaults(config_);
    const std::string state_dir = defaults ? failover::sm_notify_state_dir(*defaults) : "";
    worker_.run<Result<failover::FailoverAudit>>(
        [node, self = config_.node, state_dir](
            store::Store* store, const std::string& error) -> Result<failover::FailoverAudit> {
          if (!store) return make_error("{}", error);
          return failover::failover_audit_from_store(*store, node, self, state_dir);
        },
        [this, node](Result<failover::FailoverAudit> report) {
          log_audit(node, std::move(report));
        });
  });
}

void Cluster::log_audit(const std::string& node, Result<failover::FailoverAudit> audit) {
  if (!audit) {
    spdlog::error("failover: reclaim audit of {}: {}", node, audit.error().message);
    return;
  }
  const failover::AuditReport* report = &audit->locks;
  std::vector<std::string> missing;
  for (const auto& e : report->entries) {
    if (e.status == failover::ReclaimStatus::reclaimed) continue;
    missing.push_back(fmt::format("{}{} {}-{} {}", e.client.empty() ? "" : e.client + ":", e.path,
                                  e.old_lock.start, e.old_lock.end, failover::to_string(e.status)));
  }
  spdlog::log(
      report->not_reclaimed || report->different_range ? spdlog::level::warn : spdlog::level::info,
      "failover: reclaim audit of {} at the end of grace: {} locks held before, {} reclaimed "
      "({:.0f} %), {} with a different range, {} not reclaimed{}{}",
      node, report->locks, report->reclaimed, report->percent_reclaimed(), report->different_range,
      report->not_reclaimed, missing.empty() ? "" : ": ", fmt::join(missing, "; "));
  // One line per client that did not come back whole: whom to call.
  for (const auto& c : audit->clients.clients) {
    if (c.outcome == failover::ClientOutcome::reclaimed ||
        c.outcome == failover::ClientOutcome::no_locks)
      continue;
    spdlog::warn("failover: client {} of {}: {} of {} locks reclaimed ({}), notification {}",
                 c.client.empty() ? "(not named)" : c.client, node, c.reclaimed, c.locks,
                 failover::to_string(c.outcome), failover::to_string(c.notify.state));
  }
  audits_[node] = std::move(*audit);
  last_audit_ = node;
}

std::optional<failover::ClientReport> Cluster::last_client_report() const {
  auto it = audits_.find(last_audit_);
  if (it == audits_.end()) return std::nullopt;
  return it->second.clients;
}

nlohmann::json Cluster::status() const {
  const auto local = agent_->local();
  const auto now = std::chrono::duration_cast<health::Millis>(
      std::chrono::steady_clock::now().time_since_epoch());
  nlohmann::json peers = nlohmann::json::array();
  for (const auto& p : agent_->peers()) {
    peers.push_back({{"node", p.node},
                     {"state", health::to_string(p.state)},
                     {"serving", p.serving},
                     {"fenced", p.fenced},
                     {"epoch", p.epoch},
                     {"heartbeats", p.heartbeats},
                     {"last_heard_ms_ago", p.last_heard ? (now - *p.last_heard).count() : -1},
                     {"max_gap_ms", p.max_gap.count()},
                     {"reason", p.reason}});
  }
  nlohmann::json adoptions = nlohmann::json::array();
  for (const auto& a : adopter_->adoptions()) {
    auto j = to_json(a);
    // The counts of the final reclaim audit (the whole report: `lockferry audit --from NODE`).
    if (auto it = audits_.find(a.from_node); it != audits_.end()) {
      const auto& r = it->second.locks;
      j["audit"] = {{"locks_held_before", r.locks},
                    {"reclaimed", r.reclaimed},
                    {"different_range", r.different_range},
                    {"not_reclaimed", r.not_reclaimed},
                    {"at", clock::format_ns(r.at_ns)},
                    {"client_report", control::to_json(it->second.clients)}};
    }
    adoptions.push_back(std::move(j));
  }
  const auto& o = agent_->options();
  return {{"node", config_.node},
          {"heartbeats", o.heartbeats},
          {"listen", o.heartbeats ? agent_->listen_address() : std::string()},
          {"interval_ms", o.interval.count()},
          {"dead_after_ms", o.dead_after.count()},
          {"check", o.check_command.empty() ? std::string() : process::to_display(o.check_command)},
          {"automatic", config_.automatic},
          {"adopt_order", config_.adopt_order},
          {"local",
           {{"healthy", local.healthy},
            {"serving", local.serving},
            {"set_down", local.set_down},
            {"fit", agent_->fit()},
            {"reason", local.reason}}},
          {"peers", peers},
          {"counters", health_counters_json(agent_->counters())},
          {"adoptions", adoptions}};
}

nlohmann::json Cluster::handle(const nlohmann::json& request) {
  const std::string action = request.value("action", std::string("status"));
  auto fail = [](const std::string& message) {
    return nlohmann::json{{"ok", false}, {"error", message}};
  };
  if (action == "status") return {{"ok", true}, {"result", status()}};
  if (action == "set-down" || action == "set-up") {
    const std::string node = request.value("node", std::string());
    if (node.empty())
      return fail("health " + action + ": which node? (lockferry health " + action + " NODE)");
    auto r =
        action == "set-down"
            ? agent_->set_down(
                  node, request.value("reason", std::string("set down through the control socket")))
            : agent_->set_up(node);
    if (!r) return fail(r.error().message);
    return {{"ok", true}, {"result", status()}};
  }
  return fail("unknown health action '" + action + "' (status, set-down, set-up)");
}

}  // namespace lockferry::daemon
