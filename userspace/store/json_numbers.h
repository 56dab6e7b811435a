// SPDX-License-Identifier: Apache-2.0
// The integers-only check every dir:// document passes before any field of it is read.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace lockferry::store {

// Every number in a store document is an integer. nlohmann parses an integer too large for 64
// bits (or 1e3, 1.5) as a double, and converting that with get<uint64_t>() is undefined
// behaviour, so such a document is refused before any field is read (found by fuzzing).
bool holds_non_integer(const nlohmann::json& doc);

inline constexpr std::string_view kNotInteger = "holds a number that is not a 64-bit integer";

}  // namespace lockferry::store
