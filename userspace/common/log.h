// SPDX-License-Identifier: Apache-2.0
// How lockferry's programs log: every message escaped for display (a file name with a newline or
// ESC cannot forge a log line or drive the reader's terminal), and warnings that repeat per
// record or per event rate-limited with a count of what was left out.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace lockferry::log {

// Like spdlog::set_pattern, for every logger: but the message (%v) is written through
// text::display_safe. Whatever a message holds (file names, lock paths, client names, command
// output), one log call is one line of printable text. Call it once the loggers exist.
void set_pattern(std::string_view pattern);

// Lets through the first `burst` messages of each key per `interval` and counts the rest; when
// a key's interval ends with messages left out, the next call reports "suppressed N similar
// messages" for it. Keys name a kind of message ("capture: ignoring a bad monitor record"), never
// its variable text, so their number stays small (past kMaxKeys they share one window).
class RateLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // Reports that `count` messages of `key` were left out over `over`.
  using Reporter = std::function<void(std::string_view key, std::uint64_t count,
                                      std::chrono::milliseconds over)>;
  static constexpr std::size_t kMaxKeys = 256;

  explicit RateLimiter(std::size_t burst = 20,
                       std::chrono::milliseconds interval = std::chrono::seconds(10),
                       Reporter report = {}, Clock now = {});

  // Whether a message of `key` may be logged now (and counts it either way).
  bool allow(std::string_view key);
  // Reports every ended interval that left messages out (allow() does so as it goes).
  void flush();
  // Messages left out since this limiter was made.
  std::uint64_t suppressed() const;

 private:
  struct Window {
    std::chrono::steady_clock::time_point start;
    std::size_t passed = 0;
    std::uint64_t suppressed = 0;
  };
  void report_ended(std::chrono::steady_clock::time_point now);

  const std::size_t burst_;
  const std::chrono::milliseconds interval_;
  Reporter report_;
  Clock now_;
  mutable std::mutex mutex_;
  std::map<std::string, Window, std::less<>> windows_;
  std::chrono::steady_clock::time_point next_sweep_{};
  std::uint64_t suppressed_ = 0;
};

// The process's limiter for repeated warnings: 20 per key per 10 s, reported with spdlog::warn.
RateLimiter& repeated();

// spdlog::log(level, ...) for a message that can repeat per record or per event: rate-limited
// by `key` (see RateLimiter).
template <typename... Args>
void limited(spdlog::level::level_enum level, std::string_view key, fmt::format_string<Args...> f,
             Args&&... args) {
  if (!spdlog::should_log(level) || !repeated().allow(key)) return;
  spdlog::log(level, f, std::forward<Args>(args)...);
}

template <typename... Args>
void warn_limited(std::string_view key, fmt::format_string<Args...> f, Args&&... args) {
  limited(spdlog::level::warn, key, f, std::forward<Args>(args)...);
}

template <typename... Args>
void error_limited(std::string_view key, fmt::format_string<Args...> f, Args&&... args) {
  limited(spdlog::level::err, key, f, std::forward<Args>(args)...);
}

}  // namespace lockferry::log
