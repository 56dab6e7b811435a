// SPDX-License-Identifier: Apache-2.0
// The control socket's client side (the CLI, tests): one request, one bounded wait for the answer.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "lockferry/result.h"

namespace lockferry::control {

// Sends `request` to lockferryd at `path` and returns the response's "result", or its "error"
// (and any failure to reach it) as an error.
Result<nlohmann::json> request(const std::string& path, const nlohmann::json& request,
                               std::chrono::seconds timeout);

}  // namespace lockferry::control
