// SPDX-License-Identifier: Apache-2.0
// A BPF ring buffer read on the daemon's io_context: the ring's epoll fd becomes readable when
// the kernel wakes the reader; each wake-up consumes what is queued, then runs the owner's
// after-batch step (drop checks). A ring whose programs skip the wake-up (the lock ring: on a
// virtual machine each wake-up is a self-IPI costing the locking thread ~18 us) is also drained
// on a timer. Part of the BPF loader (bpf_loader.h).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "lockferry/result.h"

struct bpf_map;
struct ring_buffer;

namespace lockferry::capture {

class RingBufferReader {
 public:
  // One record as the kernel wrote it (only 8-byte aligned: copy before reading fields).
  using SampleHandler = std::function<void(const void* data, std::size_t size)>;
  using BatchHandler = std::function<void()>;

  // `log_prefix` starts its log lines ("capture", "locks").
  RingBufferReader(boost::asio::io_context& io, std::string log_prefix);
  RingBufferReader(const RingBufferReader&) = delete;
  RingBufferReader& operator=(const RingBufferReader&) = delete;
  ~RingBufferReader() { stop(); }

  // Reads ring buffer map `ring` (loaded) from now on; `what` names it in errors ("lock").
  // A nonzero `drain_every` also consumes (and runs the after-batch step) on that period, for
  // rings whose programs wake the reader only when the ring fills up.
  Result<void> start(const bpf_map* ring, std::string_view what, SampleHandler on_sample,
                     BatchHandler after_batch,
                     std::chrono::milliseconds drain_every = std::chrono::milliseconds(0));
  // Delivers whatever is queued now to the sample handler (no after-batch step).
  void consume();
  // Closes the descriptor (a pending wait completes aborted) and frees the reader.
  void stop();

 private:
  struct RingDeleter {
    void operator()(ring_buffer* ring) const;
  };
  static int on_sample(void* ctx, void* data, std::size_t size);
  void arm();
  void arm_drain();

  boost::asio::io_context& io_;
  std::string log_prefix_;
  std::string read_failed_key_;
  SampleHandler on_sample_;
  BatchHandler after_batch_;
  std::unique_ptr<ring_buffer, RingDeleter> ring_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> fd_;
  boost::asio::steady_timer drain_timer_;
  std::chrono::milliseconds drain_every_{0};
  // Set while reading (start() to stop()); the completion handlers hold it weakly, so it is
  // also how they tell that stop() or the destructor ran.
  std::shared_ptr<char> alive_;
};

}  // namespace lockferry::capture
