// SPDX-License-Identifier: Apache-2.0
// The client side of NSM that matters for lock recovery: an SM_NOTIFY receiver registered as
// program 100024 version 1 with the local rpcbind, as a client's rpc.statd would be.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lockferry/result.h"

namespace lockferry::tools {

// One SM_NOTIFY received: a peer (mon_name) says it rebooted and now has NSM state `state`.
struct Notification {
  std::string mon_name;
  int state = 0;
  std::string from;  // source address of the datagram/connection
  std::chrono::system_clock::time_point at;
};

// Only one listener per process: libtirpc's service table is process-global.
class NsmListener {
 public:
  // Creates UDP and TCP transports on ephemeral ports and registers them with rpcbind,
  // replacing any stale registration of 100024/1 (a previous client killed with SIGKILL).
  static Result<std::unique_ptr<NsmListener>> start();
  ~NsmListener();  // unregisters from rpcbind
  NsmListener(const NsmListener&) = delete;
  NsmListener& operator=(const NsmListener&) = delete;

  // Answers requests arriving within `timeout` (SM_NULL, SM_NOTIFY; others get PROC_UNAVAIL)
  // and returns the notifications among them. Returns early when a signal interrupts.
  std::vector<Notification> serve(std::chrono::milliseconds timeout);

  std::uint16_t udp_port() const { return udp_port_; }
  std::uint16_t tcp_port() const { return tcp_port_; }

 private:
  NsmListener() = default;
  std::uint16_t udp_port_ = 0;
  std::uint16_t tcp_port_ = 0;
};

}  // namespace lockferry::tools
