// SPDX-License-Identifier: Apache-2.0
// The poll capture mode; see poll_capture.h. Each tick asks the owner to rescan every watched
// directory (the same resync the event modes ask for after lost events).
#include "capture/poll_capture.h"

#include <boost/asio/steady_timer.hpp>

namespace lockferry::capture {
namespace {

class PollCapture final : public Capture {
 public:
  PollCapture(boost::asio::io_context& io, std::vector<std::string> dirs, ResyncHandler on_resync,
              std::chrono::milliseconds interval, std::string reason)
      : timer_(io),
        dirs_(std::move(dirs)),
        on_resync_(std::move(on_resync)),
        interval_(interval),
        reason_(std::move(reason)) {
    arm();
  }
  ~PollCapture() override { stop(); }

  Mode mode() const override { return Mode::poll; }
  std::string mode_reason() const override { return reason_; }
  Counters counters() const override { return counters_; }
  Result<void> set_dirs(const std::vector<std::string>& dirs) override {
    dirs_ = dirs;
    return {};
  }
  void stop() override {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  void arm() {
    timer_.expires_after(interval_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopped_) return;
      ++counters_.emits;  // one scan
      if (on_resync_)
        for (const auto& d : dirs_) on_resync_(d);
      arm();
    });
  }

  boost::asio::steady_timer timer_;
  std::vector<std::string> dirs_;
  ResyncHandler on_resync_;
  std::chrono::milliseconds interval_;
  std::string reason_;
  Counters counters_;
  bool stopped_ = false;
};

}  // namespace

Result<std::unique_ptr<Capture>> start_poll(boost::asio::io_context& io, const Options& options,
                                            Capture::ResyncHandler on_resync,
                                            const std::string& fallback_note,
                                            std::chrono::milliseconds interval) {
  std::string reason =
      fmt::format("poll: every watched directory rescanned every {} ms", interval.count()) +
      fallback_note;
  return std::unique_ptr<Capture>(
      new PollCapture(io, options.dirs, std::move(on_resync), interval, std::move(reason)));
}

}  // namespace lockferry::capture
