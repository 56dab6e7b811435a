// SPDX-License-Identifier: Apache-2.0
// The control socket; see control.h.
#include "control/server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

#include "control/protocol.h"

namespace lockferry::control {
namespace {

using boost::asio::local::stream_protocol;
constexpr std::size_t kMaxRequest = 64 * 1024;
// Accept failures come in bursts (every retry while descriptors are exhausted): one line, then a
// count every so often.
constexpr auto kAcceptLogEvery = std::chrono::seconds(10);

}  // namespace

// One connection: read one line (within request_timeout), answer (within reply_timeout), close.
class ControlServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(stream_protocol::socket socket, ControlServer& server, ucred cred)
      : socket_(std::move(socket)),
        deadline_(socket_.get_executor()),
        buffer_(kMaxRequest),
        server_(server),
        cred_(cred) {}

  pid_t pid() const { return cred_.pid; }
  // Still waiting for its request: the one to close when room is needed.
  bool idle() const { return state_ == State::reading; }
  std::chrono::steady_clock::time_point since() const { return since_; }

  void start() {
    if (cred_.uid != 0) {
      spdlog::warn("control socket: refused a request from uid {} pid {} (root only)", cred_.uid,
                   cred_.pid);
      reply(error_response("permission denied: the lockferry control socket accepts only root"));
      return;
    }
    arm(server_.limits_.request_timeout);
    auto self = shared_from_this();
    boost::asio::async_read_until(
        socket_, buffer_, '\n',
        [self](boost::system::error_code ec, std::size_t n) { self->on_request(ec, n); });
  }

  void close() {
    state_ = State::closed;
    boost::system::error_code ignored;
    deadline_.cancel();
    socket_.close(ignored);
  }

 private:
  enum class State { reading, handling, writing, closed };

  // Closes the connection when the current step (reading the request, writing the answer) is not
  // done within `limit`.
  void arm(std::chrono::milliseconds limit) {
    deadline_.expires_after(limit);
    deadline_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      if (ec) return;
      auto self = weak.lock();
      if (!self || self->state_ == State::closed) return;
      ++self->server_.counters_.timed_out;
      spdlog::debug("control socket: closed a client (pid {}) too slow to {} its {}",
                    self->cred_.pid, self->state_ == State::reading ? "send" : "read",
                    self->state_ == State::reading ? "request" : "answer");
      self->close();
    });
  }

  void on_request(boost::system::error_code ec, std::size_t n) {
    if (state_ != State::reading) return;  // closed meanwhile
    if (ec) {
      if (ec == boost::asio::error::not_found)
        reply(error_response("request too large or not newline-terminated"));
      else
        close();
      return;
    }
    state_ = State::handling;
    deadline_.cancel();  // a request may take as long as it needs (a migration)
    std::string line(boost::asio::buffers_begin(buffer_.data()),
                     boost::asio::buffers_begin(buffer_.data()) + static_cast<std::ptrdiff_t>(n));
    nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
    if (request.is_discarded() || !request.is_object() || !request.contains("command") ||
        !request["command"].is_string()) {
      reply(error_response("malformed request: expected one JSON object with a \"command\""));
      return;
    }
    auto self = shared_from_this();
    auto once = std::make_shared<std::atomic<bool>>(false);
    Reply answer = [self, once](nlohmann::json response) {
      if (once->exchange(true)) return;
      // From any thread: the socket belongs to the loop.
      boost::asio::post(self->socket_.get_executor(),
                        [self, response = std::move(response)] { self->reply(response); });
    };
    try {
      server_.handler_(request, answer);
    } catch (const nlohmann::json::exception& e) {
      answer(error_response(std::string("malformed request: ") + e.what()));
    }
  }

  void reply(const nlohmann::json& response) {
    if (state_ == State::closed) return;
    state_ = State::writing;
    arm(server_.limits_.reply_timeout);
    out_ = response.dump() + "\n";
    auto self = shared_from_this();
    boost::asio::async_write(socket_, boost::asio::buffer(out_),
                             [self](boost::system::error_code, std::size_t) { self->close(); });
  }

  stream_protocol::socket socket_;
  boost::asio::steady_timer deadline_;
  boost::asio::streambuf buffer_;
  ControlServer& server_;  // outlives every handler: stop() closes the sessions first
  ucred cred_;
  State state_ = State::reading;
  std::chrono::steady_clock::time_point since_ = std::chrono::steady_clock::now();
  std::string out_;
};

ControlServer::ControlServer(boost::asio::io_context& io, std::string path, AsyncHandler handler,
                             ControlLimits limits)
    : acceptor_(io),
      retry_(io),
      path_(std::move(path)),
      handler_(std::move(handler)),
      limits_(limits) {}

ControlServer::~ControlServer() { stop(); }

Result<std::unique_ptr<ControlServer>> ControlServer::start(boost::asio::io_context& io,
                                                            const std::string& path,
                                                            Handler handler, ControlLimits limits) {
  return start(
      io, path,
      AsyncHandler([handler = std::move(handler)](const nlohmann::json& request, Reply reply) {
        reply(handler(request));
      }),
      limits);
}

Result<std::unique_ptr<ControlServer>> ControlServer::start(boost::asio::io_context& io,
                                                            const std::string& path,
                                                            AsyncHandler handler,
                                                            ControlLimits limits) {
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return make_errno_error(errno, "cannot create control socket directory {}", dir);
  }
  ::unlink(path.c_str());  // a stale socket from a crashed run
  std::unique_ptr<ControlServer> server(new ControlServer(io, path, std::move(handler), limits));
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
    if (ec == boost::asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      accept_errors_logged_ = 0;
      admit(std::move(socket));
      accept();
      return;
    }
    // Out of descriptors (EMFILE, ENFILE) and the like: the connection stays in the backlog; try
    // again shortly, never give up (a control socket that stops answering is worse than a slow
    // one).
    ++counters_.accept_errors;
    const auto now = std::chrono::steady_clock::now();
    if (accept_errors_logged_ == 0 || now - last_accept_log_ >= kAcceptLogEvery) {
      spdlog::error(
          "control socket: accept failed: {} ({} times since the last report); retrying "
          "every {} ms",
          ec.message(), counters_.accept_errors, limits_.accept_retry.count());
      last_accept_log_ = now;
    }
    ++accept_errors_logged_;
    retry_.expires_after(limits_.accept_retry);
    retry_.async_wait([this](boost::system::error_code wait_ec) {
      if (!wait_ec && acceptor_.is_open()) accept();
    });
  });
}

void ControlServer::admit(stream_protocol::socket socket) {
  ++counters_.accepted;
  ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);  // Asio accepts without accept4
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    cred.uid = static_cast<uid_t>(-1);
  std::erase_if(sessions_, [](const std::weak_ptr<Session>& s) { return s.expired(); });
  std::size_t same_process = 0;
  std::shared_ptr<Session> oldest_idle;
  for (const auto& weak : sessions_) {
    auto s = weak.lock();
    if (!s) continue;
    if (s->pid() == cred.pid) ++same_process;
    if (s->idle() && (!oldest_idle || s->since() < oldest_idle->since())) oldest_idle = s;
  }
  boost::system::error_code ignored;
  if (same_process >= limits_.max_per_process) {
    ++counters_.refused_per_process;
    spdlog::debug("control socket: pid {} already has {} connections: closing the new one",
                  cred.pid, same_process);
    socket.close(ignored);
    return;
  }
  if (sessions_.size() >= limits_.max_connections) {
    if (!oldest_idle) {
      ++counters_.refused_full;
      socket.close(ignored);
      return;
    }
    ++counters_.evicted_idle;
    oldest_idle->close();
    std::erase_if(sessions_, [&](const std::weak_ptr<Session>& s) {
      return s.expired() || s.lock() == oldest_idle;
    });
  }
  auto session = std::make_shared<Session>(std::move(socket), *this, cred);
  sessions_.push_back(session);
  session->start();
}

ControlServer::Counters ControlServer::counters() const {
  Counters c = counters_;
  c.open = static_cast<std::size_t>(
      std::count_if(sessions_.begin(), sessions_.end(), [](const std::weak_ptr<Session>& s) {
        auto session = s.lock();
        return session != nullptr;
      }));
  return c;
}

void ControlServer::stop() {
  retry_.cancel();
  for (auto& weak : sessions_) {
    if (auto session = weak.lock()) session->close();
  }
  sessions_.clear();
  if (!acceptor_.is_open()) return;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  ::unlink(path_.c_str());
}

}  // namespace lockferry::control
