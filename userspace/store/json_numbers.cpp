// SPDX-License-Identifier: Apache-2.0
// The integers-only check of dir:// documents; see json_numbers.h.
#include "store/json_numbers.h"

#include <vector>

namespace lockferry::store {

// Iterative: a corrupt document may nest arrays a million deep.
bool holds_non_integer(const nlohmann::json& doc) {
  std::vector<const nlohmann::json*> todo{&doc};
  while (!todo.empty()) {
    const nlohmann::json* j = todo.back();
    todo.pop_back();
    if (j->is_number_float()) return true;
    if (j->is_structured())
      for (const auto& v : *j) todo.push_back(&v);
  }
  return false;
}

}  // namespace lockferry::store
