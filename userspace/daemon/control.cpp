// SPDX-License-Identifier: Apache-2.0
// The control socket; see control.h.
#include "daemon/control.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

namespace lockferry::daemon {
namespace {

using boost::asio::local::stream_protocol;
constexpr std::size_t kMaxRequest = 64 * 1024;

nlohmann::json error_response(const std::string& message) {
  return {{"ok", false}, {"error", message}};
}

// One connection: read one line, answer, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(stream_protocol::socket socket, ControlServer::Handler& handler)
      : socket_(std::move(socket)), buffer_(kMaxRequest), handler_(handler) {}

  void start() {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        cred.uid != 0) {
      spdlog::warn("control socket: refused a request from uid {} pid {} (root only)", cred.uid,
                   cred.pid);
      reply(error_response("permission denied: the lockferry control socket accepts only root"));
      return;
    }
    auto self = shared_from_this();
    boost::asio::async_read_until(socket_, buffer_, '\n',
                                  [self](boost::system::error_code ec, std::size_t n) {
                                    self->on_request(ec, n);
                                  });
  }

 private:
  void on_request(boost::system::error_code ec, std::size_t n) {
    if (ec) {
      if (ec == boost::asio::error::not_found)
        reply(error_response("request too large or not newline-terminated"));
      return;
    }
    std::string line(boost::asio::buffers_begin(buffer_.data()),
                     boost::asio::buffers_begin(buffer_.data()) + static_cast<std::ptrdiff_t>(n));
    nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
    if (request.is_discarded() || !request.is_object() || !request.contains("command") ||
        !request["command"].is_string()) {
      reply(error_response("malformed request: expected one JSON object with a \"command\""));
      return;
    }
    try {
      reply(handler_(request));
    } catch (const nlohmann::json::exception& e) {
      reply(error_response(std::string("malformed request: ") + e.what()));
    }
  }

  void reply(const nlohmann::json& response) {
    out_ = response.dump() + "\n";
    auto self = shared_from_this();
    boost::asio::async_write(socket_, boost::asio::buffer(out_),
                             [self](boost::system::error_code, std::size_t) {
                               boost::system::error_code ignored;
                               self->socket_.close(ignored);
                             });
  }

  stream_protocol::socket socket_;
  boost::asio::streambuf buffer_;
  ControlServer::Handler& handler_;
  std::string out_;
};

}  // namespace

ControlServer::ControlServer(boost::asio::io_context& io, std::string path, Handler handler)
    : acceptor_(io), path_(std::move(path)), handler_(std::move(handler)) {}

ControlServer::~ControlServer() { stop(); }

Result<std::unique_ptr<ControlServer>> ControlServer::start(boost::asio::io_context& io,
                                                            const std::string& path,
                                                            Handler handler) {
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return make_errno_error(errno, "cannot create control socket directory {}", dir);
  }
  ::unlink(path.c_str());  // a stale socket from a crashed run
  std::unique_ptr<ControlServer> server(new ControlServer(io, path, std::move(handler)));
  boost::system::error_code ec;
  stream_protocol::endpoint ep(path);
  server->acceptor_.open(ep.protocol(), ec);
  // Boost.Asio opens sockets without SOCK_CLOEXEC and accepts without accept4.
  if (!ec) ::fcntl(server->acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);
  if (!ec) server->acceptor_.bind(ep, ec);
  if (!ec) ::chmod(path.c_str(), 0600);
  if (!ec) server->acceptor_.listen(16, ec);
  if (ec) return make_error("cannot listen on control socket {}: {}", path, ec.message());
  server->accept();
  return server;
}

void ControlServer::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, stream_protocol::socket socket) {
    if (ec) return;  // closed by stop()
    ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
    std::make_shared<Session>(std::move(socket), handler_)->start();
    accept();
  });
}

void ControlServer::stop() {
  if (!acceptor_.is_open()) return;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  ::unlink(path_.c_str());
}

Result<nlohmann::json> control_request(const std::string& path, const nlohmann::json& request,
                                       std::chrono::seconds timeout) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_errno_error(errno, "socket");
  std::unique_ptr<int, void (*)(int*)> guard(&fd, [](int* p) { ::close(*p); });
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return make_error("control socket path too long: {}", path);
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return make_errno_error(errno, "cannot reach lockferryd at {} (is it running? or pass --store "
                            "URL to read the store directly)", path);
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

}  // namespace lockferry::daemon
