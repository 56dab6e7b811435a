// SPDX-License-Identifier: Apache-2.0
// Shared bits of the benchmark drivers: a monotonic clock, percentiles, tiny flag parsing. Every
// figure they print is a ratio or a difference of two sides measured in the same run.
#pragma once

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace lockferry::bench {

inline std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The q-quantile (0..1) of `v` by nearest rank; 0 for an empty vector.
template <typename T>
T quantile(std::vector<T> v, double q) {
  if (v.empty()) return T{};
  std::sort(v.begin(), v.end());
  auto idx = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}
template <typename T>
T median(std::vector<T> v) {
  return quantile(std::move(v), 0.5);
}

// "--name=value" flags; `value_of` returns the fallback when absent.
class Flags {
 public:
  Flags(int argc, char** argv) : args_(argv + 1, argv + argc) {}
  std::string value_of(std::string_view name, std::string fallback) const {
    const std::string prefix = "--" + std::string(name) + "=";
    for (const auto& a : args_)
      if (a.rfind(prefix, 0) == 0) return a.substr(prefix.size());
    return fallback;
  }
  long number(std::string_view name, long fallback) const {
    const std::string v = value_of(name, "");
    return v.empty() ? fallback : std::strtol(v.c_str(), nullptr, 10);
  }
  bool has(std::string_view name) const {
    const std::string flag = "--" + std::string(name);
    return std::find(args_.begin(), args_.end(), flag) != args_.end();
  }

 private:
  std::vector<std::string> args_;
};

// Benchmarks needing root/BPF exit with this code when they cannot run (ctest SKIP_RETURN_CODE).
inline constexpr int kSkipExit = 77;

inline std::string fmt_ms(std::int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ns) / 1e6);
  return buf;
}

}  // namespace lockferry::bench
