// SPDX-License-Identifier: Apache-2.0
// lf-nsm-fleet: a whole fleet of NFS clients' NSM services in one process, for the notifier's
// tests and benchmark. With `ip route add local 10.64.0.0/10 dev lo` in a network namespace every
// address of the range is local; one UDP socket on the rpcbind port answers PMAP GETPORT for
// NSM and one on the statd port answers SM_NOTIFY (and NULL) for all of them, each reply sent
// from the address the call was sent to (IP_PKTINFO), as N real hosts would.
//
//   lf-nsm-fleet [--rpcbind-port P] [--statd-port P] [--expect N] [--timeout S]
//                [--ignore ADDR]... [--no-statd ADDR]... [--ready FILE]
//
// --ignore: that address answers nothing (a dead client); --no-statd: its rpcbind has no NSM.
// Serves until SIGTERM (or the timeout: retries after the last new client still get answers)
// and prints one
// JSON line: {"notifies":..,"distinct":..,"first_ns":..,"last_ns":..,"mon_name":"..","state":..}
// (times CLOCK_REALTIME). Exit 0 when --expect distinct addresses were notified (or it was not
// given), 1 otherwise.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::uint32_t get_u32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

int open_socket(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int on = 1, size = 32 << 20;
  setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("lf-nsm-fleet: bind");
    std::exit(2);
  }
  return fd;
}

struct Call {
  std::uint32_t xid = 0, prog = 0, vers = 0, proc = 0;
  const std::uint8_t* args = nullptr;
  std::size_t args_len = 0;
};

// The call header of an RPC CALL with any credential; false if it is not one.
bool parse_call(const std::uint8_t* p, std::size_t n, Call& c) {
  if (n < 40 || get_u32(p + 4) != 0 || get_u32(p + 8) != 2) return false;
  c.xid = get_u32(p);
  c.prog = get_u32(p + 12);
  c.vers = get_u32(p + 16);
  c.proc = get_u32(p + 20);
  std::size_t off = 24;
  for (int i = 0; i < 2; ++i) {  // credential, verifier
    if (n < off + 8) return false;
    std::size_t len = get_u32(p + off + 4);
    off += 8 + (len + 3) / 4 * 4;
  }
  if (off > n) return false;
  c.args = p + off;
  c.args_len = n - off;
  return true;
}

struct Fleet {
  std::uint16_t statd_port = 32765;
  std::set<std::uint32_t> ignore, no_statd;  // host order
  std::unordered_set<std::uint32_t> notified;
  std::uint64_t notifies = 0;
  std::int64_t first_ns = 0, last_ns = 0;
  std::string mon_name;
  std::int32_t state = 0;
};

// The reply's results, or false to stay silent.
bool answer(Fleet& f, const Call& c, std::uint32_t dst, bool rpcbind,
            std::vector<std::uint8_t>& results) {
  if (f.ignore.count(dst)) return false;
  if (c.proc == 0) return true;  // NULL
  if (rpcbind && c.prog == 100000 && c.vers == 2 && c.proc == 3 && c.args_len >= 16) {
    bool has = get_u32(c.args) == 100024 && !f.no_statd.count(dst);
    put_u32(results, has ? f.statd_port : 0);
    return true;
  }
  if (!rpcbind && c.prog == 100024 && c.proc == 6 && c.args_len >= 8) {
    std::size_t len = get_u32(c.args);
    if (c.args_len < 4 + (len + 3) / 4 * 4 + 4) return false;
    f.mon_name.assign(reinterpret_cast<const char*>(c.args + 4), len);
    f.state = static_cast<std::int32_t>(get_u32(c.args + 4 + (len + 3) / 4 * 4));
    ++f.notifies;
    f.last_ns = now_ns();
    if (!f.first_ns) f.first_ns = f.last_ns;
    f.notified.insert(dst);
    return true;
  }
  return false;
}

// One datagram from `fd`: answered from the address it was sent to.
void serve_one(Fleet& f, int fd, bool rpcbind) {
  std::uint8_t buf[2048];
  char control[256];
  sockaddr_in from{};
  iovec iov{buf, sizeof buf};
  msghdr m{};
  m.msg_name = &from;
  m.msg_namelen = sizeof from;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
  if (n <= 0) return;
  in_pktinfo info{};
  for (cmsghdr* h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
    if (h->cmsg_level == IPPROTO_IP && h->cmsg_type == IP_PKTINFO)
      std::memcpy(&info, CMSG_DATA(h), sizeof info);
  Call c;
  std::vector<std::uint8_t> results;
  if (!parse_call(buf, static_cast<std::size_t>(n), c) ||
      !answer(f, c, ntohl(info.ipi_addr.s_addr), rpcbind, results))
    return;
  std::vector<std::uint8_t> reply;
  for (std::uint32_t v : {c.xid, 1u, 0u, 0u, 0u, 0u}) put_u32(reply, v);  // accepted, SUCCESS
  reply.insert(reply.end(), results.begin(), results.end());
  in_pktinfo out{};
  out.ipi_spec_dst = info.ipi_addr;
  alignas(cmsghdr) char out_control[CMSG_SPACE(sizeof out)] = {};
  iovec riov{reply.data(), reply.size()};
  msghdr r{};
  r.msg_name = &from;
  r.msg_namelen = sizeof from;
  r.msg_iov = &riov;
  r.msg_iovlen = 1;
  r.msg_control = out_control;
  r.msg_controllen = sizeof out_control;
  cmsghdr* h = CMSG_FIRSTHDR(&r);
  h->cmsg_level = IPPROTO_IP;
  h->cmsg_type = IP_PKTINFO;
  h->cmsg_len = CMSG_LEN(sizeof out);
  std::memcpy(CMSG_DATA(h), &out, sizeof out);
  (void)sendmsg(fd, &r, 0);
}

std::uint32_t parse_addr(const char* text) {
  in_addr a{};
  if (inet_pton(AF_INET, text, &a) != 1) {
    std::fprintf(stderr, "lf-nsm-fleet: not an IPv4 address: %s\n", text);
    std::exit(2);
  }
  return ntohl(a.s_addr);
}

}  // namespace

int main(int argc, char** argv) {
  Fleet f;
  std::uint16_t rpcbind_port = 111;
  std::size_t expect = 0;
  int timeout_s = 600;
  std::string ready;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string opt = argv[i];
    if (opt == "--rpcbind-port")
      rpcbind_port = static_cast<std::uint16_t>(std::stoi(argv[i + 1]));
    else if (opt == "--statd-port")
      f.statd_port = static_cast<std::uint16_t>(std::stoi(argv[i + 1]));
    else if (opt == "--expect")
      expect = std::stoul(argv[i + 1]);
    else if (opt == "--timeout")
      timeout_s = std::stoi(argv[i + 1]);
    else if (opt == "--ignore")
      f.ignore.insert(parse_addr(argv[i + 1]));
    else if (opt == "--no-statd")
      f.no_statd.insert(parse_addr(argv[i + 1]));
    else if (opt == "--ready")
      ready = argv[i + 1];
    else {
      std::fprintf(stderr, "lf-nsm-fleet: unknown option %s\n", opt.c_str());
      return 2;
    }
  }
  signal(SIGTERM, [](int) { g_stop = 1; });
  signal(SIGINT, [](int) { g_stop = 1; });
  pollfd fds[2] = {{open_socket(rpcbind_port), POLLIN, 0}, {open_socket(f.statd_port), POLLIN, 0}};
  if (!ready.empty()) std::ofstream(ready) << "ready\n";
  const std::int64_t end = now_ns() + std::int64_t{timeout_s} * 1000000000;
  while (!g_stop && now_ns() < end) {
    if (poll(fds, 2, 100) <= 0) continue;
    for (int k = 0; k < 2; ++k)
      if (fds[k].revents & POLLIN)
        for (int burst = 0; burst < 64; ++burst) serve_one(f, fds[k].fd, k == 0);
  }
  std::printf(
      "{\"notifies\":%llu,\"distinct\":%zu,\"first_ns\":%lld,\"last_ns\":%lld,\"mon_name\":\"%s\","
      "\"state\":%d}\n",
      static_cast<unsigned long long>(f.notifies), f.notified.size(),
      static_cast<long long>(f.first_ns), static_cast<long long>(f.last_ns), f.mon_name.c_str(),
      f.state);
  return expect == 0 || f.notified.size() >= expect ? 0 : 1;
}
