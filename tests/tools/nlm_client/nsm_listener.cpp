// SPDX-License-Identifier: Apache-2.0
// SM_NOTIFY receiver on libtirpc (see nsm_listener.h). Kept apart from the libnfs files: the
// two libraries declare the same RPC types (struct rpc_msg, AUTH, ...) in their headers.
#include "nlm_client/nsm_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <rpc/pmap_clnt.h>
#include <rpc/rpc.h>
#include <spdlog/spdlog.h>
#include <sys/select.h>

#include <cerrno>
#include <cstring>

namespace lockferry::tools {
namespace {

constexpr rpcprog_t kNsmProgram = 100024;
constexpr rpcvers_t kNsmVersion = 1;
constexpr rpcproc_t kSmNull = 0;
constexpr rpcproc_t kSmNotify = 6;
constexpr unsigned kSmMaxStrLen = 1024;

// RFC 1813 / X/Open NSM: struct stat_chge { string mon_name<SM_MAXSTRLEN>; int state; }.
struct StatChange {
  char* mon_name = nullptr;
  int state = 0;
};

bool_t xdr_stat_change(XDR* xdrs, StatChange* s) {
  return xdr_string(xdrs, &s->mon_name, kSmMaxStrLen) && xdr_int(xdrs, &s->state);
}

// tirpc's xdrproc_t is variadic and xdr_void takes nothing; going through void(*)() is the
// cast GCC accepts as deliberate.
template <typename F>
xdrproc_t as_xdrproc(F* f) {
  return reinterpret_cast<xdrproc_t>(reinterpret_cast<void (*)()>(f));
}

// tirpc dispatches through a plain function with no user pointer, so the queue is global
// (one listener per process, see the header).
std::vector<Notification>* g_received = nullptr;

std::string caller_address(SVCXPRT* xprt) {
  const netbuf* nb = svc_getrpccaller(xprt);
  if (nb == nullptr || nb->buf == nullptr) return "unknown";
  const auto* sa = static_cast<const sockaddr*>(nb->buf);
  char text[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text, sizeof text);
  } else {
    return "unknown";
  }
  return text;
}

void dispatch(svc_req* req, SVCXPRT* xprt) {
  switch (req->rq_proc) {
    case kSmNull:
      svc_sendreply(xprt, as_xdrproc(xdr_void), nullptr);
      return;
    case kSmNotify: {
      StatChange args;
      if (!svc_getargs(xprt, as_xdrproc(xdr_stat_change), reinterpret_cast<char*>(&args))) {
        spdlog::warn("SM_NOTIFY from {}: cannot decode the arguments", caller_address(xprt));
        svcerr_decode(xprt);
        return;
      }
      Notification n{args.mon_name != nullptr ? args.mon_name : "", args.state,
                     caller_address(xprt), std::chrono::system_clock::now()};
      svc_freeargs(xprt, as_xdrproc(xdr_stat_change), reinterpret_cast<char*>(&args));
      // Reply first: sm-notify retries until it gets the (void) answer.
      svc_sendreply(xprt, as_xdrproc(xdr_void), nullptr);
      spdlog::info("SM_NOTIFY from {}: mon_name {} state {}", n.from, n.mon_name, n.state);
      if (g_received != nullptr) g_received->push_back(std::move(n));
      return;
    }
    default:
      // SM_STAT/MON/UNMON are for a local lock manager talking to its own statd; we are not one.
      svcerr_noproc(xprt);
      return;
  }
}

// Whether some NSM service registered with the local rpcbind answers SM_NULL: a running
// rpc.statd (or another lf-nlm-client) in this network namespace, as opposed to a stale
// registration left by a client killed with SIGKILL.
bool live_nsm_registered() {
  CLIENT* clnt = clnt_create("127.0.0.1", kNsmProgram, kNsmVersion, "udp");
  if (clnt == nullptr) return false;  // not registered (or rpcbind unreachable)
  timeval timeout{1, 0};
  clnt_control(clnt, CLSET_RETRY_TIMEOUT, reinterpret_cast<char*>(&timeout));
  const clnt_stat st = clnt_call(clnt, kSmNull, as_xdrproc(xdr_void), nullptr, as_xdrproc(xdr_void),
                                 nullptr, timeout);
  clnt_destroy(clnt);
  return st == RPC_SUCCESS;
}

}  // namespace

Result<std::unique_ptr<NsmListener>> NsmListener::start() {
  if (live_nsm_registered()) {
    return make_error(
        "NSM listener: an NSM service (rpc.statd?) already answers as 100024/1 here; a client "
        "host has one NSM: run lf-nlm-client --listen-notify in its own network namespace "
        "(with its own rpcbind) and no rpc.statd");
  }
  // A client killed with SIGKILL leaves its registration behind; ours replaces it.
  pmap_unset(kNsmProgram, kNsmVersion);
  SVCXPRT* udp = svcudp_create(RPC_ANYSOCK);
  if (udp == nullptr) return make_error("NSM listener: cannot create the UDP transport");
  SVCXPRT* tcp = svctcp_create(RPC_ANYSOCK, 0, 0);
  if (tcp == nullptr) return make_error("NSM listener: cannot create the TCP transport");
  if (!svc_register(udp, kNsmProgram, kNsmVersion, dispatch, IPPROTO_UDP)) {
    return make_error(
        "NSM listener: cannot register program 100024 v1/udp with rpcbind (is rpcbind running "
        "in this network namespace, and is no rpc.statd registered here?)");
  }
  if (!svc_register(tcp, kNsmProgram, kNsmVersion, dispatch, IPPROTO_TCP)) {
    return make_error("NSM listener: cannot register program 100024 v1/tcp with rpcbind");
  }
  std::unique_ptr<NsmListener> l(new NsmListener());
  l->udp_port_ = udp->xp_port;
  l->tcp_port_ = tcp->xp_port;
  spdlog::info("NSM listener registered with rpcbind: udp port {}, tcp port {}", l->udp_port_,
               l->tcp_port_);
  return l;
}

NsmListener::~NsmListener() { pmap_unset(kNsmProgram, kNsmVersion); }

std::vector<Notification> NsmListener::serve(std::chrono::milliseconds timeout) {
  std::vector<Notification> received;
  g_received = &received;
  fd_set ready = svc_fdset;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  const int n = select(FD_SETSIZE, &ready, nullptr, nullptr, &tv);
  if (n > 0) {
    svc_getreqset(&ready);
  } else if (n < 0 && errno != EINTR) {
    spdlog::warn("NSM listener: select failed: {}", std::strerror(errno));
  }
  g_received = nullptr;
  return received;
}

}  // namespace lockferry::tools
