// SPDX-License-Identifier: Apache-2.0
// Shape limits of store documents, before parsing; see document_limits.h.
#include "store/document_limits.h"

#include <malloc.h>

#include <algorithm>

namespace lockferry::store {

Result<void> check_document_shape(std::string_view text, std::string_view what,
                                  const DocumentLimits& limits) {
  // Values: every '[' or '{' starts one, every ',' another; the first value of a document adds 1.
  const std::size_t max_values =
      text.size() / std::max<std::size_t>(limits.bytes_per_value, 1) + 16;
  std::size_t depth = 0, values = 1;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // the escaped character, '"' included
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > limits.max_depth)
          return make_error("{}: nested more than {} levels deep (at byte {}); not parsed", what,
                            limits.max_depth, i);
        ++values;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;  // unbalanced text is the parser's to refuse
        break;
      case ',':
        ++values;
        break;
      default:
        break;
    }
    if (values > max_values)
      return make_error(
          "{}: more than {} values in {} bytes (at byte {}): not a document this store writes; "
          "not parsed",
          what, max_values, text.size(), i);
  }
  return {};
}

void release_memory_after(std::size_t bytes) {
  if (bytes >= (1u << 20)) ::malloc_trim(0);
}

}  // namespace lockferry::store
