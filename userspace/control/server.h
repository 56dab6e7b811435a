// SPDX-License-Identifier: Apache-2.0
// The control socket's server side (lockferryd): one JSON request line in, one JSON response
// line out, root only. The requests and responses are in control/protocol.h.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lockferry/result.h"

namespace lockferry::control {

// How many clients the control socket serves at once and for how long. One client process
// cannot take every slot, idle and slow clients are closed, and when the server is full the
// oldest connection still waiting for its request makes room for the new one. Test-sized values
// are set by the tests; lockferryd uses the defaults.
struct ControlLimits {
  std::size_t max_connections = 64;
  std::size_t max_per_process = 8;                  // by the client's pid (SO_PEERCRED)
  std::chrono::milliseconds request_timeout{5000};  // from accept to the end of the request line
  std::chrono::milliseconds reply_timeout{10000};   // to write the answer
  std::chrono::milliseconds accept_retry{200};      // after an accept failed (EMFILE, ENFILE, ...)
};

// Requests are {"command": "...", ...}; responses {"ok": true, "result": ...} or
// {"ok": false, "error": "..."} (control/protocol.h). Requests are capped in size and must come
// from uid 0 (checked with SO_PEERCRED), so a local user cannot trigger a migration.
class ControlServer {
 public:
  // Answers on the loop.
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;
  // Answers later, from any thread, by calling `reply` once (lockferryd runs long requests on its
  // worker thread this way); not calling it closes the connection.
  using Reply = std::function<void(nlohmann::json response)>;
  using AsyncHandler = std::function<void(const nlohmann::json& request, Reply reply)>;

  static Result<std::unique_ptr<ControlServer>> start(boost::asio::io_context& io,
                                                      const std::string& path, Handler handler,
                                                      ControlLimits limits = {});
  static Result<std::unique_ptr<ControlServer>> start(boost::asio::io_context& io,
                                                      const std::string& path, AsyncHandler handler,
                                                      ControlLimits limits = {});
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;
  void stop();

  // Open connections and those refused or closed by the limits, for status and tests.
  struct Counters {
    std::size_t open = 0;
    std::uint64_t accepted = 0;
    std::uint64_t refused_full = 0;         // closed at once: every slot taken by busy clients
    std::uint64_t refused_per_process = 0;  // closed at once: that process has too many
    std::uint64_t evicted_idle = 0;         // waiting for their request when room was needed
    std::uint64_t timed_out = 0;            // too slow to send the request or read the answer
    std::uint64_t accept_errors = 0;        // EMFILE and the like; accepting is retried
  };
  Counters counters() const;

  class Session;  // one connection; defined in server.cpp

 private:
  ControlServer(boost::asio::io_context& io, std::string path, AsyncHandler handler,
                ControlLimits limits);
  void accept();
  void admit(boost::asio::local::stream_protocol::socket socket);

  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  std::string path_;
  AsyncHandler handler_;
  ControlLimits limits_;
  std::vector<std::weak_ptr<Session>> sessions_;
  Counters counters_;
  std::chrono::steady_clock::time_point last_accept_log_{};
  std::uint64_t accept_errors_logged_ = 0;
};

}  // namespace lockferry::control
