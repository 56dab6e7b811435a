// SPDX-License-Identifier: Apache-2.0
// Ring buffer reader on the io_context; see bpf_ring.h.
#include "capture/bpf_ring.h"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <cerrno>

#include "common/log.h"

namespace lockferry::capture {

void RingBufferReader::RingDeleter::operator()(ring_buffer* ring) const { ring_buffer__free(ring); }

RingBufferReader::RingBufferReader(boost::asio::io_context& io, std::string log_prefix)
    : io_(io),
      log_prefix_(std::move(log_prefix)),
      read_failed_key_(log_prefix_ + ": reading the BPF ring buffer failed"),
      drain_timer_(io) {}

Result<void> RingBufferReader::start(const bpf_map* ring, std::string_view what,
                                     SampleHandler on_sample, BatchHandler after_batch,
                                     std::chrono::milliseconds drain_every) {
  stop();
  on_sample_ = std::move(on_sample);
  after_batch_ = std::move(after_batch);
  ring_.reset(ring_buffer__new(bpf_map__fd(ring), &RingBufferReader::on_sample, this, nullptr));
  if (!ring_) return make_errno_error(errno, "cannot set up the {} ring buffer reader", what);
  // asio waits on a dup of the epoll fd (the stream_descriptor closes what it owns,
  // ring_buffer__free closes the original). Not dup(): CLOEXEC.
  const int fd = ::fcntl(ring_buffer__epoll_fd(ring_.get()), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) {
    ring_.reset();
    return make_errno_error(errno, "cannot dup the {} ring buffer epoll fd", what);
  }
  fd_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fd);
  alive_ = std::make_shared<char>();
  drain_every_ = drain_every;
  arm();
  if (drain_every_.count() > 0) arm_drain();
  return {};
}

void RingBufferReader::arm_drain() {
  drain_timer_.expires_after(drain_every_);
  drain_timer_.async_wait(
      [this, alive = std::weak_ptr<char>(alive_)](const boost::system::error_code& ec) {
        // Checked before `this` is touched: stop() (or the destructor) ran since, and a wait that
        // had already completed when it cancelled still comes here, without an error.
        if (ec || alive.expired()) return;
        consume();
        if (after_batch_) after_batch_();
        if (!alive.expired()) arm_drain();
      });
}

void RingBufferReader::arm() {
  fd_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                  [this, alive = std::weak_ptr<char>(alive_)](const boost::system::error_code& ec) {
                    // As in arm_drain: `this` may be gone (the descriptor closed by stop()).
                    if (ec == boost::asio::error::operation_aborted || alive.expired()) return;
                    if (ec) {
                      spdlog::error("{}: waiting on the BPF ring buffer failed: {}", log_prefix_,
                                    ec.message());
                      return;
                    }
                    consume();
                    if (after_batch_) after_batch_();
                    if (!alive.expired()) arm();
                  });
}

int RingBufferReader::on_sample(void* ctx, void* data, std::size_t size) {
  auto* self = static_cast<RingBufferReader*>(ctx);
  self->on_sample_(data, size);
  return 0;
}

void RingBufferReader::consume() {
  if (!alive_ || !ring_) return;
  const int n = ring_buffer__consume(ring_.get());
  if (n < 0)
    log::warn_limited(read_failed_key_, "{}: reading the BPF ring buffer failed: {}", log_prefix_,
                      strerror_text(-n));
}

void RingBufferReader::stop() {
  alive_.reset();
  drain_timer_.cancel();
  if (fd_) {
    boost::system::error_code ec;
    fd_->close(ec);  // a pending wait completes with operation_aborted
    fd_.reset();
  }
  ring_.reset();
}

}  // namespace lockferry::capture
