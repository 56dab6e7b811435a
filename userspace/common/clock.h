// SPDX-License-Identifier: Apache-2.0
// Wall-clock timestamps as stored in records (nanoseconds since the epoch, CLOCK_REALTIME).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lockferry::clock {

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// CLOCK_MONOTONIC in nanoseconds: the clock BPF programs stamp events with (bpf_ktime_get_ns).
inline std::int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// RFC 3339 UTC with milliseconds, for logs, CLI tables and JSON ("2026-11-25T12:00:00.123Z").
std::string format_ns(std::int64_t ns);

}  // namespace lockferry::clock
