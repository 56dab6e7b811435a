// SPDX-License-Identifier: Apache-2.0
// The control socket: one JSON request line in, one JSON response line out, root only.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <nlohmann/json.hpp>

#include "lockferry/result.h"

namespace lockferry::daemon {

// Requests are {"command": "...", ...}; responses {"ok": true, "result": ...} or
// {"ok": false, "error": "..."}. Requests are capped in size and must come from uid 0 (checked
// with SO_PEERCRED), so a local user cannot trigger a migration.
class ControlServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  static Result<std::unique_ptr<ControlServer>> start(boost::asio::io_context& io,
                                                      const std::string& path, Handler handler);
  ~ControlServer();
  void stop();

 private:
  ControlServer(boost::asio::io_context& io, std::string path, Handler handler);
  void accept();

  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
  Handler handler_;
};

// Client side, for the CLI: sends one request and waits (bounded) for the response.
Result<nlohmann::json> control_request(const std::string& path, const nlohmann::json& request,
                                       std::chrono::seconds timeout);

}  // namespace lockferry::daemon
