// SPDX-License-Identifier: Apache-2.0
// Prometheus /metrics for lockferryd; see metrics.h.
#include "daemon/metrics.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/buffers_iterator.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "daemon/counter_values.h"

namespace lockferry::daemon {
namespace {

using boost::asio::ip::tcp;

constexpr std::size_t kMaxRequest = 8 * 1024;
constexpr std::size_t kMaxConnections = 16;
constexpr auto kConnectionTimeout = std::chrono::seconds(5);

using counters::Exposition;
using counters::label_value;

double seconds(std::int64_t ns) { return static_cast<double>(ns) / 1e9; }

// The end of the request headers: an empty line, CRLF or bare LF (hand-typed requests).
using RequestIterator = boost::asio::buffers_iterator<boost::asio::streambuf::const_buffers_type>;
std::pair<RequestIterator, bool> headers_end(RequestIterator begin, RequestIterator end) {
  char prev = 0, prev2 = 0;
  for (RequestIterator i = begin; i != end; ++i) {
    const char c = *i;
    if (c == '\n' && (prev == '\n' || (prev == '\r' && prev2 == '\n'))) return {std::next(i), true};
    prev2 = prev;
    prev = c;
  }
  return {begin, false};
}

std::string http_response(int status, std::string_view reason, std::string_view content_type,
                          std::string_view body, bool include_body, std::string_view extra = {}) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}",
      status, reason, content_type, body.size(), extra, include_body ? body : std::string_view{});
}

}  // namespace

MetricsSample collect_metrics(const std::string& node, const capture::Capture& capture,
                              const record::Recorder& recorder, store::Store& store,
                              std::int64_t started_ns) {
  MetricsSample s;
  s.node = node;
  s.epoch = recorder.epoch();
  s.capture_mode = capture.mode();
  s.events = capture.counters();
  s.recorder = recorder.stats();
  s.started_ns = started_ns;
  if (auto records = store.list_monitor(node)) {
    s.monitor_records = records->size();
  } else {
    spdlog::debug("metrics: cannot count the records of node {}: {}", node,
                  records.error().message);
  }
  if (auto migrations = store.list_migrations()) {
    for (const auto& m : *migrations) {
      if (m.to_node != node) continue;
      if (!s.last_migration || m.started_ns > s.last_migration->started_ns) s.last_migration = m;
    }
  } else {
    spdlog::debug("metrics: cannot list migrations: {}", migrations.error().message);
  }
  return s;
}

void collect_lock_metrics(MetricsSample& sample, const capture::LockCapture* capture,
                          const record::LockRecorder* recorder, std::int64_t last_reconcile_ns) {
  if (!capture || !recorder) return;
  LockMetrics l;
  l.events = capture->counters();
  l.recorder = recorder->stats();
  l.held = recorder->table().size();
  l.last_reconcile_ns = last_reconcile_ns;
  sample.locks = l;
}

namespace {

// [locks]: the monitor capture's families with "lock_" after "lockferry_".
void render_lock_metrics(Exposition& e, const std::optional<LockMetrics>& locks) {
  e.one("lockferry_lock_capture_up", "gauge",
        "1 when the lock grant capture ([locks]) is running; see lockferry status for why not.",
        locks ? 1 : 0);
  if (!locks) return;
  e.group(counters::kLockEvents, lock_events_values(locks->events));
  e.group(counters::kLockImpostors, lock_impostors_values(locks->events));
  e.group(counters::kLockReconcile, lock_reconcile_values(locks->events, locks->recorder));
  if (locks->last_reconcile_ns > 0) {
    e.one("lockferry_lock_reconcile_last_timestamp_seconds", "gauge",
          "When the last reconcile of the lock table took its kernel snapshot (Unix time).",
          seconds(locks->last_reconcile_ns));
  }
  e.group(counters::kLockTable, lock_table_values(locks->held, locks->recorder));
}

}  // namespace

std::string render_metrics(const MetricsSample& s) {
  Exposition e;
  const std::string node = fmt::format("node=\"{}\"", label_value(s.node));
  e.one("lockferry_build_info", "gauge", "lockferryd's version.", 1,
        fmt::format("version=\"{}\"", label_value(LOCKFERRY_VERSION)));
  e.one("lockferry_start_time_seconds", "gauge", "When lockferryd started (Unix time).",
        seconds(s.started_ns));

  e.family("lockferry_capture_mode", "gauge",
           "The capture mode (hook set) in use: 1 for the active one.");
  for (auto mode : {capture::Mode::fentry, capture::Mode::kprobe, capture::Mode::tracepoint,
                    capture::Mode::fanotify, capture::Mode::inotify, capture::Mode::poll}) {
    e.sample("lockferry_capture_mode", fmt::format("mode=\"{}\"", capture::to_string(mode)),
             s.capture_mode == mode ? 1 : 0);
  }
  e.group(counters::kCapture, capture_values(s.events));
  e.group(counters::kRecords, records_values(s.recorder));
  e.group(counters::kReconcile, reconcile_values(s.recorder));

  e.one("lockferry_fencing_epoch", "gauge", "This node's fencing epoch in the store.", s.epoch,
        node);
  e.one("lockferry_fenced", "gauge",
        "1 when another node adopted this one: lockferryd no longer writes its records.",
        s.recorder.fenced ? 1 : 0, node);
  e.one("lockferry_store_readable", "gauge",
        "1 when this scrape could read this node's records from the store.",
        s.monitor_records ? 1 : 0);
  if (s.monitor_records) {
    e.one("lockferry_monitor_records", "gauge", "Monitor records stored for this node.",
          *s.monitor_records, node);
  }
  render_lock_metrics(e, s.locks);
  if (s.health) {
    e.group(counters::kHeartbeats, heartbeats_values(*s.health));
    e.group(counters::kHeartbeatsDropped, heartbeats_dropped_values(*s.health));
    e.group(counters::kHealthChecks, health_checks_values(*s.health));
  }
  if (s.control) e.group(counters::kControl, control_values(*s.control));
  if (const auto& m = s.last_migration) {
    const std::string labels =
        fmt::format("from=\"{}\",to=\"{}\"", label_value(m->from_node), label_value(m->to_node));
    e.one("lockferry_last_migration_timestamp_seconds", "gauge",
          "When this node's latest migration (adoption of another node) started (Unix time).",
          seconds(m->started_ns), labels);
    if (m->finished_ns > 0) {
      e.one("lockferry_last_migration_duration_seconds", "gauge",
            "How long this node's latest migration took, fencing to recognition.",
            seconds(m->finished_ns - m->started_ns), labels);
      e.one("lockferry_last_migration_success", "gauge",
            "1 when this node's latest migration succeeded, 0 when it reported a problem.",
            m->result == "ok" ? 1 : 0, labels);
    }
    e.one("lockferry_last_migration_records", "gauge",
          "Monitor records replayed by this node's latest migration.", m->records, labels);
  }
  if (const auto& r = s.last_client_report) {
    e.group(counters::kFailoverClients, failover_clients_values(*r));
    e.group(counters::kFailoverNotify, failover_notify_values(*r));
  }
  return e.take();
}

// One scrape: read the request head, answer it, close. A deadline closes the socket of a client
// that is too slow, so it cannot hold a connection slot for long.
class MetricsServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Render& render)
      : socket_(std::move(socket)),
        deadline_(socket_.get_executor()),
        buffer_(kMaxRequest),
        render_(render) {}

  void start() {
    deadline_.expires_after(kConnectionTimeout);
    deadline_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->close();
    });
    auto self = shared_from_this();
    boost::asio::async_read_until(
        socket_, buffer_, headers_end,
        [self](boost::system::error_code ec, std::size_t) { self->on_request(ec); });
  }

  // Still waiting for its request head: the one to close when a new scrape needs the slot.
  bool idle() const { return !answered_; }
  std::chrono::steady_clock::time_point since() const { return since_; }

  void close() {
    answered_ = true;
    boost::system::error_code ignored;
    deadline_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  void on_request(boost::system::error_code ec) {
    answered_ = true;
    if (ec == boost::asio::error::not_found) {
      reply(http_response(431, "Request Header Fields Too Large", "text/plain",
                          "request too large\n", true));
      return;
    }
    if (ec) return;  // client went away, or the deadline closed the socket
    std::string head(boost::asio::buffers_begin(buffer_.data()),
                     boost::asio::buffers_end(buffer_.data()));
    const std::string line = head.substr(0, head.find_first_of("\r\n"));
    // "METHOD TARGET HTTP/x.y"
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string::npos || line.compare(sp2 + 1, 5, "HTTP/") != 0) {
      reply(http_response(400, "Bad Request", "text/plain", "malformed request line\n", true));
      return;
    }
    const std::string method = line.substr(0, sp1);
    std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
    path = path.substr(0, path.find('?'));
    const bool head_only = method == "HEAD";
    if (method != "GET" && !head_only) {
      reply(http_response(405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", true,
                          "Allow: GET, HEAD\r\n"));
      return;
    }
    if (path == "/metrics") {
      reply(http_response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", render_(),
                          !head_only));
    } else if (path == "/") {
      reply(http_response(200, "OK", "text/plain; charset=utf-8",
                          "lockferryd: Prometheus metrics are at /metrics\n", !head_only));
    } else {
      reply(http_response(404, "Not Found", "text/plain", "not found: try /metrics\n", !head_only));
    }
  }

  void reply(std::string response) {
    out_ = std::move(response);
    auto self = shared_from_this();
    boost::asio::async_write(socket_, boost::asio::buffer(out_),
                             [self](boost::system::error_code, std::size_t) { self->close(); });
  }

  tcp::socket socket_;
  boost::asio::steady_timer deadline_;
  boost::asio::streambuf buffer_;
  const Render& render_;  // owned by the server, which outlives the io_context's handlers
  std::string out_;
  bool answered_ = false;
  std::chrono::steady_clock::time_point since_ = std::chrono::steady_clock::now();
};

MetricsServer::MetricsServer(boost::asio::io_context& io, Render render)
    : acceptor_(io), retry_(io), render_(std::move(render)) {}

MetricsServer::~MetricsServer() { stop(); }

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(boost::asio::io_context& io,
                                                            std::string_view listen,
                                                            Render render) {
  auto endpoint = parse_listen_address(listen);
  if (!endpoint) return endpoint.error();
  std::unique_ptr<MetricsServer> server(new MetricsServer(io, std::move(render)));
  boost::system::error_code ec;
  auto& acceptor = server->acceptor_;
  acceptor.open(endpoint->protocol(), ec);
  // Boost.Asio opens sockets without SOCK_CLOEXEC and accepts without accept4.
  if (!ec) ::fcntl(acceptor.native_handle(), F_SETFD, FD_CLOEXEC);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(*endpoint, ec);
  if (!ec) acceptor.listen(tcp::socket::max_listen_connections, ec);
  if (ec)
    return make_error(
        "cannot serve /metrics on {}: {} (another process may use that port: choose "
        "another [metrics] listen, or \"\" to turn metrics off)",
        listen, ec.message());
  if (!endpoint->address().is_loopback())
    spdlog::warn(
        "metrics: /metrics on {} is reachable from the network without authentication; "
        "prefer a loopback address (127.0.0.1) and scrape through a proxy or tunnel",
        listen);
  spdlog::info("metrics: serving Prometheus metrics at http://{}/metrics", listen);
  server->accept();
  return server;
}

tcp::endpoint MetricsServer::local_endpoint() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void MetricsServer::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
      std::erase_if(sessions_, [](const std::weak_ptr<Session>& s) { return s.expired(); });
      if (sessions_.size() >= kMaxConnections) {
        // Slow or idle clients (connected, request not sent) must not lock out a real scrape,
        // which sends its request at once: the longest-waiting of them makes room.
        std::shared_ptr<Session> oldest;
        for (const auto& weak : sessions_) {
          auto s = weak.lock();
          if (s && s->idle() && (!oldest || s->since() < oldest->since())) oldest = s;
        }
        if (oldest) {
          oldest->close();
          std::erase_if(sessions_, [&](const std::weak_ptr<Session>& s) {
            return s.expired() || s.lock() == oldest;
          });
        }
      }
      if (sessions_.size() >= kMaxConnections) {
        boost::system::error_code ignored;
        socket.close(ignored);  // every slot is writing an answer: the scraper retries
      } else {
        auto session = std::make_shared<Session>(std::move(socket), render_);
        sessions_.push_back(session);
        session->start();
      }
      accept();
      return;
    }
    // Out of file descriptors and the like: retry later instead of spinning on the loop.
    spdlog::warn("metrics: accept failed: {}; retrying in 1 s", ec.message());
    retry_.expires_after(std::chrono::seconds(1));
    retry_.async_wait([this](boost::system::error_code wait_ec) {
      if (!wait_ec && acceptor_.is_open()) accept();
    });
  });
}

void MetricsServer::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  retry_.cancel();
  for (auto& weak : sessions_) {
    if (auto session = weak.lock()) session->close();
  }
  sessions_.clear();
}

}  // namespace lockferry::daemon
