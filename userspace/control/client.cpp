// SPDX-License-Identifier: Apache-2.0
// The control socket's client side; see client.h.
#include "control/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace lockferry::control {

Result<nlohmann::json> request(const std::string& path, const nlohmann::json& request,
                               std::chrono::seconds timeout) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_errno_error(errno, "socket");
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* p) { ::close(*p); });
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return make_error("control socket path too long: {}", path);
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return make_errno_error(errno,
                            "cannot reach lockferryd at {} (is it running? or pass --store "
                            "URL to read the store directly)",
                            path);
  std::string out = request.dump() + "\n";
  if (::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size()))
    return make_errno_error(errno, "cannot send request to lockferryd at {}", path);
  std::string in;
  char buf[4096];
  while (in.find('\n') == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) return make_errno_error(errno, "no answer from lockferryd at {}", path);
    in.append(buf, static_cast<std::size_t>(n));
  }
  auto response = nlohmann::json::parse(in, nullptr, false);
  if (response.is_discarded() || !response.is_object())
    return make_error("lockferryd at {} sent a malformed answer", path);
  if (!response.value("ok", false))
    return make_error("lockferryd: {}", response.value("error", std::string("unknown error")));
  return response.value("result", nlohmann::json{});
}

}  // namespace lockferry::control
