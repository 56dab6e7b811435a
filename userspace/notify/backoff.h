// SPDX-License-Identifier: Apache-2.0
// When to send a call again that got no answer: the wait doubles from `first` up to `max`, and
// nothing is sent after the deadline (a dead client must not hold a failover for long).
#pragma once

#include <chrono>

namespace lockferry::notify {

struct Backoff {
  std::chrono::milliseconds first{250};
  std::chrono::milliseconds max{4000};

  // The wait after the `attempt`-th send (1 = the first).
  std::chrono::milliseconds after(int attempt) const;
};

}  // namespace lockferry::notify
