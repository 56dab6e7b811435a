// SPDX-License-Identifier: Apache-2.0
// Sender: SM_NOTIFY to many clients at once over one UDP socket on an io_context. Per client
// address it first asks the client's rpcbind for its statd port (GETPORT, once per address,
// shared by every record naming it), then sends SM_NOTIFY there; each unanswered call is sent
// again after a backoff until the deadline. At most `window` calls are in flight, so a large
// fleet does not overflow socket buffers on either side.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <queue>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "lockferry/result.h"
#include "notify/backoff.h"
#include "notify/client_result.h"

namespace lockferry::notify {

struct Target {
  std::string client;                   // the record's name, reported back
  boost::asio::ip::address_v4 address;  // where its rpcbind and statd answer
};

struct SendOptions {
  boost::asio::ip::address_v4 source;  // the service IP: clients accept only the server they use
  std::string mon_name;                // the name sent (sm-notify -v: the service IP's name)
  std::int32_t state = 0;              // the new NSM state
  std::chrono::milliseconds deadline{60000};  // from start(); afterwards nothing is sent
  Backoff backoff{};
  std::size_t window = 256;   // calls in flight at once
  bool reserved_port = true;  // send from a port < 1024 (needs CAP_NET_BIND_SERVICE)
  std::uint16_t rpcbind_port = 111;
  std::chrono::milliseconds progress_every{1000};  // a log line while it runs
};

class Sender {
 public:
  // `on_acknowledged` runs on the io_context for each client as its answer arrives.
  Sender(boost::asio::io_context& io, SendOptions options, std::vector<Target> targets,
         std::function<void(const ClientResult&)> on_acknowledged);

  // Binds the socket (service IP, reserved port) and starts sending; the io_context's run()
  // returns once every client answered or the deadline passed.
  Result<void> start();

  // Valid once run() returned: one result per target, in the targets' order.
  const std::vector<ClientResult>& results() const { return results_; }

 private:
  struct Port {  // one client address: its rpcbind answer, shared by its records
    boost::asio::ip::address_v4 address;
    std::vector<std::size_t> clients;
    std::uint16_t port = 0;
    int attempts = 0;
    bool done = false;
  };
  struct Due {
    std::chrono::steady_clock::time_point at;
    std::uint32_t xid;
    int attempt;
    bool operator>(const Due& o) const { return at > o.at; }
  };

  Result<void> bind_socket();
  void receive();
  void on_datagram(std::size_t size);
  void on_getport(std::size_t port_index, std::span<const std::uint8_t> results);
  void on_notify_answer(std::size_t client);
  void queue_call(std::uint32_t xid);
  void pump();
  void send_call(std::uint32_t xid, int attempt);
  void on_tick();
  void log_progress() const;
  void finish();
  bool answered(std::uint32_t xid) const;

  std::uint32_t getport_xid(std::size_t port_index) const;
  std::uint32_t notify_xid(std::size_t client) const;

  SendOptions options_;
  std::vector<Target> targets_;
  std::function<void(const ClientResult&)> on_acknowledged_;
  std::vector<ClientResult> results_;
  std::vector<std::size_t> port_of_client_;
  std::vector<Port> ports_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::steady_timer tick_;
  std::deque<std::uint32_t> ready_;  // calls waiting for room in the window
  std::priority_queue<Due, std::vector<Due>, std::greater<>> retries_;
  std::vector<std::uint8_t> buffer_;
  boost::asio::ip::udp::endpoint peer_;
  std::uint32_t xid_base_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t settled_ = 0;  // acknowledged or given up (port 0)
  std::size_t acknowledged_ = 0;
  std::chrono::steady_clock::time_point started_, deadline_, next_progress_;
  bool finished_ = false;
};

}  // namespace lockferry::notify
