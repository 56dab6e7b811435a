// SPDX-License-Identifier: Apache-2.0
// lockferryd's wiring; see daemon.h.
#include "daemon/daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include "common/clock.h"
#include "common/log.h"
#include "config/migrate_defaults.h"
#include "control/protocol.h"
#include "daemon/counter_values.h"
#include "daemon/privileges.h"
#include "failover/migration.h"

namespace lockferry::daemon {

Daemon::Daemon(Config config, std::string config_path, Overrides overrides)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      overrides_(std::move(overrides)),
      signals_(io_, SIGINT, SIGTERM, SIGHUP),
      reconcile_timer_(io_) {}

Daemon::~Daemon() = default;

// Kea's launch(): numbered phases, each with its own error, in the order they depend on each
// other. A failed phase ends the start: run() logs its error and exits.
Result<void> Daemon::start() {
  struct Phase {
    const char* what;
    Result<void> (Daemon::*run)();
  };
  static constexpr Phase phases[] = {
      {"open the store", &Daemon::open_store},
      {"start capture", &Daemon::start_capture},
      {"serve the control socket", &Daemon::start_control},
      {"start the health agent", &Daemon::start_cluster},
      {"serve metrics", &Daemon::start_metrics},
      {"drop privileges", &Daemon::finish_start},
  };
  started_ns_ = clock::now_ns();
  for (std::size_t i = 0; i < std::size(phases); ++i) {
    if (auto r = (this->*phases[i].run)(); !r)
      return make_error("start phase {} ({}): {}", i + 1, phases[i].what, r.error().message);
  }
  return {};
}

// 1: the store, this node's fencing epoch, and the recorder that writes to them.
Result<void> Daemon::open_store() {
  auto store = store::open_store(config_.store_url);
  if (!store)
    return make_error("cannot open store {}: {}", config_.store_url, store.error().message);
  store_ = std::move(*store);

  auto epoch = store_->epoch(config_.node);
  if (!epoch)
    return make_error("cannot read the fencing epoch of node {} from {}: {}", config_.node,
                      config_.store_url, epoch.error().message);
  if (auto migrations = store_->list_migrations()) {
    for (const auto& m : *migrations) {
      if (m.from_node == config_.node && m.epoch == *epoch)
        spdlog::warn(
            "node {} was adopted by {} at epoch {} ({}); recording this node's records "
            "again from now on",
            config_.node, m.to_node, m.epoch, clock::format_ns(m.started_ns));
    }
  }
  recorder_ = std::make_unique<record::Recorder>(*store_, config_.node, *epoch, io_);
  return {};
}

// 2: the monitor capture, the lock capture (its failure is logged, not fatal), the first scan.
Result<void> Daemon::start_capture() {
  capture::Options options{config_.monitor_dirs, config_.capture_mode, config_.pin_dir,
                           config_.ring_buffer_kb};
  auto cap = capture::Capture::start(
      io_, options, [this](const capture::FileChange& change) { recorder_->on_change(change); },
      [this](const std::string& dir) {
        spdlog::warn("capture may have missed events in {}: reconciling now", dir);
        schedule_reconcile(std::chrono::milliseconds(0));
      });
  if (!cap) return make_error("cannot start capture: {}", cap.error().message);
  capture_ = std::move(*cap);
  start_locks();

  // The first full scan: whatever statd wrote while we were not running.
  reconcile_now("start");
  schedule_reconcile(config_.reconcile_interval);
  return {};
}

// 3: the worker for long requests and the control socket.
Result<void> Daemon::start_control() {
  worker_ = std::make_unique<Worker>(io_, config_.store_url);
  auto control = control::ControlServer::start(
      io_, config_.socket_path,
      [this](const nlohmann::json& r, control::ControlServer::Reply reply) {
        handle(r, std::move(reply));
      });
  if (!control) return control.error();
  control_ = std::move(*control);
  return {};
}

// 4: with [health], the health agent and automatic adoption.
Result<void> Daemon::start_cluster() {
  if (!config_.health.enabled) return {};
  auto cluster = Cluster::start(
      io_, config_, *worker_,
      [this] {
        // Either recorder learning it was adopted is enough: the heartbeats then say fenced.
        const bool fenced =
            recorder_->stats().fenced || (lock_recorder_ && lock_recorder_->stats().fenced);
        return std::pair<std::uint64_t, bool>{recorder_->epoch(), fenced};
      },
      [this] {
        if (lock_capture_) lock_capture_->rescan();
      });
  if (!cluster) return cluster.error();
  cluster_ = std::move(*cluster);
  return {};
}

// 5: with [metrics] listen, /metrics. Metrics are for watching, not for keeping locks: a busy
// port is logged, not fatal.
Result<void> Daemon::start_metrics() {
  if (config_.metrics_listen.empty()) return {};
  auto metrics = MetricsServer::start(io_, config_.metrics_listen, [this] {
    auto sample = collect_metrics(config_.node, *capture_, *recorder_, *store_, started_ns_);
    collect_lock_metrics(sample, lock_capture_.get(), lock_recorder_.get(),
                         last_lock_reconcile_ns_);
    if (cluster_) {
      sample.health = cluster_->counters();
      sample.last_client_report = cluster_->last_client_report();
    }
    if (control_) sample.control = control_->counters();
    return render_metrics(sample);
  });
  if (metrics)
    metrics_ = std::move(*metrics);
  else
    spdlog::error("{}", metrics.error().message);
  return {};
}

// 6: signals, then down to the capabilities the running daemon needs, then ready.
Result<void> Daemon::finish_start() {
  signals_.async_wait([this](boost::system::error_code ec, int signo) {
    if (!ec) on_signal(signo);
  });
  spdlog::info("capture attached: node {}, mode {} ({}), watching {}, store {}, epoch {}",
               config_.node, capture::to_string(capture_->mode()), capture_->mode_reason(),
               fmt::join(config_.monitor_dirs, ", "), store_->url(), recorder_->epoch());
  // Everything that needed full root (loading, attaching, pinning, fanotify_init, sockets) is done.
  if (auto r = drop_capabilities(capabilities_to_keep()); !r)
    return make_error("cannot drop capabilities after attaching capture: {}", r.error().message);
  ::sd_notify(0, "READY=1");
  return {};
}

void Daemon::on_signal(int signo) {
  if (signo == SIGHUP) {
    reload();
    // Re-arm: one signal_set for the daemon's whole life.
    signals_.async_wait([this](boost::system::error_code ec, int s) {
      if (!ec) on_signal(s);
    });
    return;
  }
  stop(signo == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Daemon::stop(const char* why) {
  spdlog::info("stopping ({})", why);
  ::sd_notify(0, "STOPPING=1");
  boost::system::error_code ignored;
  signals_.cancel(ignored);
  reconcile_timer_.cancel();
  if (control_) control_->stop();
  if (worker_) worker_->stop();  // a request already running still finishes
  if (metrics_) metrics_->stop();
  if (cluster_) cluster_->stop();
  stop_locks();
  if (capture_) capture_->stop();
  if (recorder_) recorder_->flush();  // records read but not yet stored (group commit)
}

void Daemon::schedule_reconcile(std::chrono::milliseconds delay) {
  if (delay.count() == 0) {
    // Coalesce bursts of drop notifications into one scan.
    if (resync_pending_) return;
    resync_pending_ = true;
    boost::asio::post(io_, [this] {
      resync_pending_ = false;
      reconcile_now("missed events");
    });
    return;
  }
  reconcile_timer_.expires_after(delay);
  reconcile_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    reconcile_now("timer");
    schedule_reconcile(config_.reconcile_interval);
  });
}

void Daemon::reconcile_now(const char* why) {
  log::repeated().flush();  // warnings left out in an interval that has ended: say how many
  auto repairs = recorder_->reconcile(config_.monitor_dirs);
  last_reconcile_ns_ = clock::now_ns();
  if (!repairs) {
    spdlog::error("reconcile ({}) failed: {}; retrying at the next interval", why,
                  repairs.error().message);
  } else {
    spdlog::debug("reconcile ({}): {} repairs", why, *repairs);
  }
}

nlohmann::json Daemon::status() const {
  const auto counters = capture_->counters();
  const auto& stats = recorder_->stats();
  nlohmann::json s = {
      {"node", config_.node},
      {"epoch", recorder_->epoch()},
      {"fenced", stats.fenced},
      {"store", store_->url()},
      {"store_backlog", store_->backlog()},
      {"monitor_dirs", config_.monitor_dirs},
      {"capture",
       {{"mode", capture::to_string(capture_->mode())}, {"reason", capture_->mode_reason()}}},
      {"records", {{"last_error", stats.last_error}}},
      {"reconcile",
       {{"interval_s", config_.reconcile_interval.count()},
        {"last", clock::format_ns(last_reconcile_ns_)}}},
      {"started", clock::format_ns(started_ns_)},
      {"version", LOCKFERRY_VERSION},
  };
  counters::add_json(s["capture"], counters::kCapture, capture_values(counters));
  counters::add_json(s["records"], counters::kRecords, records_values(stats));
  counters::add_json(s["reconcile"], counters::kReconcile, reconcile_values(stats));
  if (cluster_) s["health"] = cluster_->status();
  if (control_)
    s["control"] = counters::to_json(counters::kControl, control_values(control_->counters()));
  s["locks"] = locks_status();
  s["reload"] = reload_.to_json();
  return s;
}

namespace {

nlohmann::json fail(const std::string& message) { return control::error_response(message); }
nlohmann::json ok(nlohmann::json result) { return control::ok_response(std::move(result)); }

// Runs `compute` with the worker's store, answering with its result (or the store's error).
void on_worker(Worker& worker, control::ControlServer::Reply reply,
               std::function<nlohmann::json(store::Store&)> compute) {
  worker.run<nlohmann::json>(
      [compute = std::move(compute)](store::Store* store, const std::string& error) {
        if (!store) return fail(error);
        try {
          return compute(*store);
        } catch (const std::exception& e) {
          return fail(e.what());
        }
      },
      std::move(reply));
}

}  // namespace

void Daemon::handle(const nlohmann::json& request, control::ControlServer::Reply reply) {
  const std::string command = request.at("command").get<std::string>();
  if (command == "records") {
    std::string node = request.value("node", config_.node);
    on_worker(*worker_, std::move(reply), [node](store::Store& store) {
      auto records = store.list_monitor(node);
      if (!records) return fail(records.error().message);
      nlohmann::json out = nlohmann::json::array();
      for (const auto& r : *records) out.push_back(control::to_json(r));
      return ok(out);
    });
    return;
  }
  if (command == "migrate") {
    auto defaults = migrate_defaults(config_);
    if (!defaults) return reply(fail(defaults.error().message));
    auto options = control::migrate_options(request, *defaults);
    if (!options) return reply(fail(options.error().message));
    // Recognition may take minutes (sm-notify, a restart of the lock manager): off the loop.
    on_worker(*worker_, std::move(reply), [options = *options](store::Store& store) {
      auto report = failover::migrate(store, options);
      if (!report) return fail(report.error().message);
      return ok(control::to_json(*report));
    });
    return;
  }
  if (command == "audit") {
    // The reclaim audit of an adoption: the old primary's lock table against this node's.
    const std::string from = request.value("from", std::string());
    if (from.empty())
      return reply(fail("audit: which node was adopted? (lockferry audit --from NODE)"));
    auto defaults = migrate_defaults(config_);
    if (!defaults) return reply(fail(defaults.error().message));
    on_worker(*worker_, std::move(reply),
              [from, node = config_.node,
               state_dir = failover::sm_notify_state_dir(*defaults)](store::Store& store) {
                auto report = failover::failover_audit_from_store(store, from, node, state_dir);
                if (!report) return fail(report.error().message);
                return ok(control::to_json(*report));
              });
    return;
  }
  if (command == "locks") return handle_locks(request, std::move(reply));
  reply(handle_on_loop(request));
}

nlohmann::json Daemon::handle_on_loop(const nlohmann::json& request) {
  const std::string command = request.at("command").get<std::string>();
  if (command == "status") return ok(status());
  if (command == "reconcile") {
    // The recorder lives on the loop; the heartbeats do not, so a big reconcile delays only
    // capture (which the kernel buffers), never a heartbeat.
    reconcile_now("requested");
    return ok(status());
  }
  if (command == "health") {
    if (!cluster_)
      return fail(
          "health is not configured on this node: add a [health] section to lockferryd's "
          "configuration (see the user guide)");
    return cluster_->handle(request);
  }
  return fail("unknown command '" + command +
              "' (status, records, locks, reconcile, migrate, health, audit)");
}

int Daemon::run() {
  if (auto r = start(); !r) {
    spdlog::critical("{}", r.error().message);
    if (capture_) capture_->stop();
    return 1;
  }
  io_.run();
  spdlog::info("stopped");
  return 0;
}

}  // namespace lockferry::daemon
