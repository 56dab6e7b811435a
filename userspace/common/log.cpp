// SPDX-License-Identifier: Apache-2.0
// Escaped log messages and rate-limited warnings; see log.h.
#include "common/log.h"

#include <spdlog/pattern_formatter.h>

#include "common/text.h"

namespace lockferry::log {
namespace {

// The pattern flag for the escaped message.
constexpr char kSafeMessageFlag = '*';

class SafeMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (text::is_display_safe(payload)) {
      dest.append(payload.data(), payload.data() + payload.size());
      return;
    }
    const std::string safe = text::display_safe(payload);
    dest.append(safe.data(), safe.data() + safe.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SafeMessage>();
  }
};

}  // namespace

void set_pattern(std::string_view pattern) {
  std::string safe;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    safe += pattern[i];
    if (pattern[i] != '%' || i + 1 == pattern.size()) continue;
    // "%%" is a literal percent sign; "%v" the message.
    const char next = pattern[++i];
    safe += next == 'v' ? kSafeMessageFlag : next;
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<SafeMessage>(kSafeMessageFlag).set_pattern(safe);
  spdlog::set_formatter(std::move(formatter));
}

RateLimiter::RateLimiter(std::size_t burst, std::chrono::milliseconds interval, Reporter report,
                         Clock now)
    : burst_(burst), interval_(interval), report_(std::move(report)), now_(std::move(now)) {
  if (!now_) now_ = [] { return std::chrono::steady_clock::now(); };
  if (!report_)
    report_ = [](std::string_view key, std::uint64_t count, std::chrono::milliseconds over) {
      spdlog::warn("{}: suppressed {} similar message(s) in the last {:.1f} s", key, count,
                   static_cast<double>(over.count()) / 1000.0);
    };
}

void RateLimiter::report_ended(std::chrono::steady_clock::time_point now) {
  for (auto& [key, w] : windows_) {
    if (w.suppressed == 0 || now - w.start < interval_) continue;
    report_(key, w.suppressed,
            std::chrono::duration_cast<std::chrono::milliseconds>(now - w.start));
    w = Window{now, 0, 0};
  }
  next_sweep_ = now + interval_;
}

bool RateLimiter::allow(std::string_view key) {
  std::lock_guard lock(mutex_);
  const auto now = now_();
  // Other keys' ended intervals too, so a burst that stopped is still reported (at most once
  // per interval: the sweep walks every key).
  if (now >= next_sweep_) report_ended(now);
  auto it = windows_.find(key);
  if (it == windows_.end()) {
    if (windows_.size() >= kMaxKeys) key = "(other repeated messages)";
    it = windows_.try_emplace(std::string(key), Window{now, 0, 0}).first;
  }
  Window& w = it->second;
  if (now - w.start >= interval_) {
    if (w.suppressed > 0)
      report_(it->first, w.suppressed,
              std::chrono::duration_cast<std::chrono::milliseconds>(now - w.start));
    w = Window{now, 0, 0};
  }
  if (w.passed < burst_) {
    ++w.passed;
    return true;
  }
  ++w.suppressed;
  ++suppressed_;
  return false;
}

void RateLimiter::flush() {
  std::lock_guard lock(mutex_);
  report_ended(now_());
}

std::uint64_t RateLimiter::suppressed() const {
  std::lock_guard lock(mutex_);
  return suppressed_;
}

RateLimiter& repeated() {
  static RateLimiter limiter;
  return limiter;
}

}  // namespace lockferry::log
