// SPDX-License-Identifier: Apache-2.0
// A token bucket on a caller-supplied monotonic clock: how many heartbeat datagrams per second a
// receiver authenticates, so a flood costs bounded CPU whatever its rate.
#pragma once

#include <algorithm>
#include <chrono>

namespace lockferry::health {

class TokenBucket {
 public:
  // `rate` tokens per second, at most `burst` saved up; it starts full.
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}

  // Takes one token if there is one.
  bool take(std::chrono::nanoseconds now) {
    if (last_.count() != 0 && now > last_)
      tokens_ =
          std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
    last_ = now;
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  std::chrono::nanoseconds last_{0};
};

}  // namespace lockferry::health
