// SPDX-License-Identifier: Apache-2.0
// Out-of-line helpers of Result/Error.
#include "lockferry/result.h"

#include <cstring>

namespace lockferry {

const char* strerror_text(int err) {
  return strerrordesc_np(err) ? strerrordesc_np(err) : "unknown error";
}

}  // namespace lockferry
