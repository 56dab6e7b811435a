// SPDX-License-Identifier: Apache-2.0
// lf-udp-flood: sends forged lockferry heartbeats as fast as one process can (sendmmsg batches)
// at a heartbeat port, for the flood tests. Each datagram is well-formed (magic, version, the
// name of a real peer, a fresh timestamp) so only the HMAC can tell it from a genuine one, which
// is the most expensive kind for a receiver that does not filter first.
// usage: lf-udp-flood TO_IP:PORT FROM_IP NODE SECONDS   (prints "sent N datagrams in S s, R/s")
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

void put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v & 0xff);
}

std::int64_t realtime_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

sockaddr_in parse(const std::string& ip, unsigned short port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "lf-udp-flood: '%s' is not an IPv4 address\n", ip.c_str());
    std::exit(2);
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: lf-udp-flood TO_IP:PORT FROM_IP NODE SECONDS\n");
    return 2;
  }
  const std::string to = argv[1];
  const auto colon = to.rfind(':');
  if (colon == std::string::npos) return 2;
  const sockaddr_in dest =
      parse(to.substr(0, colon), static_cast<unsigned short>(std::atoi(to.c_str() + colon + 1)));
  const sockaddr_in from = parse(argv[2], 0);
  const std::string node = argv[3];
  const double seconds = std::atof(argv[4]);
  if (node.empty() || node.size() > 64) return 2;

  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0) {
    std::perror("lf-udp-flood: socket/bind");
    return 1;
  }
  int big = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);

  constexpr unsigned kBatch = 64;
  const std::size_t size = 40 + node.size() + 32;
  std::vector<std::vector<std::uint8_t>> packets(kBatch, std::vector<std::uint8_t>(size));
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  std::uint64_t seq = 1;
  for (unsigned i = 0; i < kBatch; ++i) {
    auto& p = packets[i];
    std::memcpy(p.data(), "LFHB", 4);
    p[4] = 1;  // version
    p[5] = 2;  // "leaving": what an attacker would forge to make a node adopt another
    p[6] = 1;  // serving
    p[7] = static_cast<std::uint8_t>(node.size());
    put64(&p[8], 0x1234567890abcdefULL);  // incarnation
    std::memcpy(&p[40], node.data(), node.size());
    for (std::size_t b = 40 + node.size(); b < size; ++b) p[b] = static_cast<std::uint8_t>(b * 7);
    iov[i] = {p.data(), p.size()};
    msgs[i].msg_hdr.msg_name = const_cast<sockaddr_in*>(&dest);
    msgs[i].msg_hdr.msg_namelen = sizeof dest;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::uint64_t sent = 0;
  std::uint64_t errors = 0;
  while (std::chrono::steady_clock::now() < end) {
    const std::int64_t now = realtime_ms();
    for (unsigned i = 0; i < kBatch; ++i) {
      put64(&packets[i][16], ++seq);
      put64(&packets[i][24], static_cast<std::uint64_t>(now));
    }
    for (int round = 0; round < 16; ++round) {
      const int n = ::sendmmsg(fd, msgs.data(), kBatch, 0);
      if (n > 0)
        sent += static_cast<std::uint64_t>(n);
      else
        ++errors;
    }
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sent %llu datagrams in %.1f s, %.0f/s (%llu send errors)\n",
              static_cast<unsigned long long>(sent), took, static_cast<double>(sent) / took,
              static_cast<unsigned long long>(errors));
  ::close(fd);
  return 0;
}
