// SPDX-License-Identifier: Apache-2.0
// Timestamp formatting; see clock.h.
#include "common/clock.h"

#include <fmt/format.h>

#include <ctime>

namespace lockferry::clock {

std::string format_ns(std::int64_t ns) {
  if (ns <= 0) return "-";
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (ns / 1'000'000) % 1000);
}

}  // namespace lockferry::clock
