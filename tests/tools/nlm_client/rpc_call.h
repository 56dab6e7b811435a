// SPDX-License-Identifier: Apache-2.0
// Blocking calls over libnfs's asynchronous raw RPC API: one connection to one RPC program of the
// server, each call waited for with a deadline. Only the libnfs-side files include this header.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "lockferry/result.h"

struct rpc_context;

namespace lockferry::tools {

// libnfs's callback signature; `data` is only valid during the callback.
using RpcCallback = void (*)(rpc_context* rpc, int status, void* data, void* private_data);

// One TCP connection (found through the server's rpcbind) to program/version on the server.
// A call that times out or fails at the transport level breaks the connection for good: the
// caller makes a new one (the server may have restarted, or be another machine now).
class RpcConnection {
 public:
  static Result<std::unique_ptr<RpcConnection>> connect(const std::string& server, int program,
                                                        int version, const char* what,
                                                        std::chrono::milliseconds timeout);
  ~RpcConnection();
  RpcConnection(const RpcConnection&) = delete;
  RpcConnection& operator=(const RpcConnection&) = delete;

  // Starts one call with `start(rpc, callback, private_data)` (a libnfs rpc_*_async function
  // bound to its arguments) and waits for the reply; `on_reply(data)` copies what it needs out
  // of the decoded reply. `what` names the call in errors ("NLM4_LOCK data.lock").
  Result<void> call(const std::string& what,
                    const std::function<int(rpc_context*, RpcCallback, void*)>& start,
                    const std::function<void(void*)>& on_reply);

 private:
  RpcConnection(rpc_context* rpc, std::string server, std::string what,
                std::chrono::milliseconds timeout);
  rpc_context* rpc_;
  std::string server_;
  std::string what_;
  std::chrono::milliseconds timeout_;
  bool broken_ = false;
};

}  // namespace lockferry::tools
