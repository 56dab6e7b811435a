// SPDX-License-Identifier: Apache-2.0
// Retry waits; see backoff.h.
#include "notify/backoff.h"

#include <algorithm>

namespace lockferry::notify {

std::chrono::milliseconds Backoff::after(int attempt) const {
  auto wait = first;
  for (int i = 1; i < attempt && wait < max; ++i) wait *= 2;
  return std::min(wait, max);
}

}  // namespace lockferry::notify
