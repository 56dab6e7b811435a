// SPDX-License-Identifier: Apache-2.0
// Blocking calls over libnfs's asynchronous raw RPC API (see rpc_call.h).
#include "nlm_client/rpc_call.h"

#include <poll.h>

// libnfs.h must come first: it defines EXTERN for the raw headers.
// clang-format off
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
// clang-format on

namespace lockferry::tools {
namespace {

// What one outstanding call reports back through libnfs's C callback.
struct Pending {
  bool done = false;
  int status = RPC_STATUS_ERROR;
  std::string error;
  const std::function<void(void*)>* on_reply = nullptr;
};

void on_callback(rpc_context* /*rpc*/, int status, void* data, void* private_data) {
  auto* p = static_cast<Pending*>(private_data);
  p->done = true;
  p->status = status;
  if (status == RPC_STATUS_SUCCESS) {
    if (p->on_reply != nullptr && *p->on_reply) (*p->on_reply)(data);
  } else if (status == RPC_STATUS_ERROR && data != nullptr) {
    p->error = static_cast<const char*>(data);
  } else if (status == RPC_STATUS_CANCEL) {
    p->error = "call cancelled";
  } else if (status == RPC_STATUS_TIMEOUT) {
    p->error = "call timed out";
  }
}

// Drives the context until `p` completes or the deadline passes. libnfs also needs
// rpc_service() called with no events from time to time for its own timeouts, hence the
// short poll interval.
bool wait_for(rpc_context* rpc, Pending& p, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!p.done) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{rpc_get_fd(rpc), static_cast<short>(rpc_which_events(rpc)), 0};
    const int n = poll(&pfd, 1, static_cast<int>(std::min<long>(left.count(), 100)));
    if (n < 0 && errno != EINTR) return false;
    if (rpc_service(rpc, n > 0 ? pfd.revents : 0) < 0) {
      // The connection is gone; libnfs has failed (or will fail) every call in flight.
      if (!p.done) {
        p.done = true;
        p.status = RPC_STATUS_ERROR;
        p.error = rpc_get_error(rpc) != nullptr ? rpc_get_error(rpc) : "connection lost";
      }
    }
  }
  return true;
}

}  // namespace

RpcConnection::RpcConnection(rpc_context* rpc, std::string server, std::string what,
                             std::chrono::milliseconds timeout)
    : rpc_(rpc), server_(std::move(server)), what_(std::move(what)), timeout_(timeout) {}

RpcConnection::~RpcConnection() {
  // Disconnecting fails any call still in flight before the context goes away.
  rpc_disconnect(rpc_, "closing");
  rpc_destroy_context(rpc_);
}

Result<std::unique_ptr<RpcConnection>> RpcConnection::connect(const std::string& server,
                                                              int program, int version,
                                                              const char* what,
                                                              std::chrono::milliseconds timeout) {
  rpc_context* rpc = rpc_init_context();
  if (rpc == nullptr) return make_error("{} on {}: cannot allocate an RPC context", what, server);
  std::unique_ptr<RpcConnection> conn(new RpcConnection(rpc, server, what, timeout));
  Pending p;
  if (rpc_connect_program_async(rpc, server.c_str(), program, version, on_callback, &p) != 0) {
    return make_error("{} on {}: cannot start connecting: {}", what, server, rpc_get_error(rpc));
  }
  if (!wait_for(rpc, p, timeout)) {
    rpc_disconnect(rpc, "connect timed out");
    return make_error(
        "{} on {}: no connection within {} ms (is the server up and registered "
        "with its rpcbind?)",
        what, server, timeout.count());
  }
  if (p.status != RPC_STATUS_SUCCESS) {
    return make_error("{} on {}: cannot connect: {}", what, server, p.error);
  }
  return conn;
}

Result<void> RpcConnection::call(const std::string& what,
                                 const std::function<int(rpc_context*, RpcCallback, void*)>& start,
                                 const std::function<void(void*)>& on_reply) {
  if (broken_) return make_error("{} to {} on {}: connection already failed", what, what_, server_);
  Pending p;
  p.on_reply = &on_reply;
  if (start(rpc_, on_callback, &p) != 0) {
    broken_ = true;
    return make_error("{} to {} on {}: cannot send: {}", what, what_, server_, rpc_get_error(rpc_));
  }
  if (!wait_for(rpc_, p, timeout_)) {
    broken_ = true;
    rpc_disconnect(rpc_, "call timed out");  // fails `p` while it is still alive
    return make_error("{} to {} on {}: no reply within {} ms", what, what_, server_,
                      timeout_.count());
  }
  if (p.status != RPC_STATUS_SUCCESS) {
    broken_ = true;
    return make_error("{} to {} on {}: {}", what, what_, server_, p.error);
  }
  return {};
}

}  // namespace lockferry::tools
