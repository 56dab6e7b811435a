// SPDX-License-Identifier: Apache-2.0
// lockferryd: wires capture -> recorder -> store, the reconcile timer, the control socket and
// signals onto one io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "capture/capture.h"
#include "capture/lock_capture.h"
#include "config/config.h"
#include "control/server.h"
#include "daemon/cluster.h"
#include "daemon/metrics.h"
#include "daemon/reload.h"
#include "daemon/worker.h"
#include "record/lock_recorder.h"
#include "record/recorder.h"
#include "store/store.h"

namespace lockferry::daemon {

class Daemon {
 public:
  // `overrides` (the command line's) apply to every reload of `config_path` as they did to
  // `config`.
  Daemon(Config config, std::string config_path, Overrides overrides = {});
  ~Daemon();

  // Starts everything, runs until SIGTERM/SIGINT, cleans up. Returns the process exit code.
  int run();

 private:
  // Starts everything in numbered phases (daemon.cpp), each with its own error.
  Result<void> start();
  Result<void> open_store();
  Result<void> start_capture();
  Result<void> start_control();
  Result<void> start_cluster();
  Result<void> start_metrics();
  Result<void> finish_start();
  void stop(const char* why);
  void on_signal(int signo);
  void reload();
  void schedule_reconcile(std::chrono::milliseconds delay);
  void reconcile_now(const char* why);
  // Control requests: quick ones are answered on the loop, those that can take seconds (store
  // reads, audit, migrate) on the worker thread.
  void handle(const nlohmann::json& request, control::ControlServer::Reply reply);
  nlohmann::json handle_on_loop(const nlohmann::json& request);
  nlohmann::json status() const;
  // Lock grant capture ([locks]); daemon/locks.cpp. Failing to start it is logged, not fatal.
  void start_locks();
  void stop_locks();
  void reload_locks(const Config& fresh);
  nlohmann::json locks_status() const;
  void handle_locks(const nlohmann::json& request, control::ControlServer::Reply reply);

  Config config_;
  std::string config_path_;
  Overrides overrides_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer reconcile_timer_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<record::Recorder> recorder_;
  std::unique_ptr<capture::Capture> capture_;
  std::unique_ptr<Worker> worker_;  // long control requests, with its own store connection
  std::unique_ptr<control::ControlServer> control_;
  std::unique_ptr<record::LockRecorder> lock_recorder_;  // only with [locks] enabled
  std::unique_ptr<capture::LockCapture> lock_capture_;   // null when disabled or unavailable
  std::string locks_error_;                              // why lock capture is not running
  capture::LockOptions lock_options_;       // what the running lock capture was started with
  std::unique_ptr<MetricsServer> metrics_;  // only with [metrics] listen
  std::unique_ptr<Cluster> cluster_;        // only with [health]
  ReloadReport reload_;                     // the last SIGHUP, for status (daemon/reload.cpp)
  bool resync_pending_ = false;
  std::int64_t started_ns_ = 0;
  std::int64_t last_reconcile_ns_ = 0;
  std::int64_t last_lock_reconcile_ns_ = 0;  // CLOCK_REALTIME of the last kernel lock snapshot
};

}  // namespace lockferry::daemon
