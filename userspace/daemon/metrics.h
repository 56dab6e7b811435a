// SPDX-License-Identifier: Apache-2.0
// Prometheus /metrics for lockferryd: the text exposition of its counters, and a tiny HTTP server
// for it on the daemon's io_context (no thread of its own).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capture/capture.h"
#include "capture/lock_capture.h"
#include "config/listen_address.h"
#include "control/server.h"
#include "failover/client_report.h"
#include "health/agent.h"
#include "lockferry/result.h"
#include "record/lock_recorder.h"
#include "record/recorder.h"
#include "store/store.h"

namespace lockferry::daemon {

// The lock capture's part of a scrape ([locks]).
struct LockMetrics {
  capture::LockCounters events;
  record::LockRecorderStats recorder;
  std::size_t held = 0;                // ranges in this node's lock table
  std::int64_t last_reconcile_ns = 0;  // CLOCK_REALTIME of the last kernel snapshot; 0 = none yet
};

// Everything one scrape reports. Filled by collect_metrics() from the running daemon, or by hand
// in tests.
struct MetricsSample {
  std::string node;
  std::uint64_t epoch = 0;
  capture::Mode capture_mode = capture::Mode::automatic;
  capture::Counters events;
  record::RecorderStats recorder;
  std::optional<std::size_t>
      monitor_records;  // this node's records in the store; empty = unreadable
  std::optional<store::MigrationRecord> last_migration;  // the latest adoption *by* this node
  // The per-client report of this node's latest adoption at the end of its grace period.
  std::optional<failover::ClientReport> last_client_report;
  std::int64_t started_ns = 0;             // CLOCK_REALTIME of the daemon's start
  std::optional<LockMetrics> locks;        // empty when lock capture is disabled or could not start
  std::optional<health::Counters> health;  // empty without [health]
  std::optional<control::ControlServer::Counters>
      control;  // empty when the control socket is not up
};

// Reads the counters of the running pieces, and this node's record count and latest migration
// from the store (one directory listing each: cheap next to a scrape interval).
MetricsSample collect_metrics(const std::string& node, const capture::Capture& capture,
                              const record::Recorder& recorder, store::Store& store,
                              std::int64_t started_ns);

// Adds the lock capture's counters to `sample` (nothing when `capture` is null: not running).
void collect_lock_metrics(MetricsSample& sample, const capture::LockCapture* capture,
                          const record::LockRecorder* recorder, std::int64_t last_reconcile_ns);

// The Prometheus text exposition format (version 0.0.4) of one sample.
std::string render_metrics(const MetricsSample& sample);

// Serves GET/HEAD /metrics (HTTP/1.x, one request per connection) with whatever `render`
// returns at that moment. Slow or idle clients are cut off after a few seconds and at most a
// handful of connections are served at once, so a scraper cannot pile up work on the loop.
class MetricsServer {
 public:
  using Render = std::function<std::string()>;

  static Result<std::unique_ptr<MetricsServer>> start(boost::asio::io_context& io,
                                                      std::string_view listen, Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Where it listens (the real port when started with port 0).
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Stops accepting and closes open connections so that io_context::run() can return.
  void stop();

  class Session;  // one connection; defined in metrics.cpp

 private:
  MetricsServer(boost::asio::io_context& io, Render render);
  void accept();

  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;  // re-accept after an accept error
  Render render_;
  std::vector<std::weak_ptr<Session>> sessions_;
};

}  // namespace lockferry::daemon
