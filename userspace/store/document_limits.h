// SPDX-License-Identifier: Apache-2.0
// Limits on a JSON document read from the store, checked on its text before it is parsed. A
// store may be writable by others (a cluster file system, another node): a document nested a
// million deep, or made of millions of tiny values, takes a DOM parser many times its size in
// memory (a 40 MB locks.json took lockferryd to 1.5 GB). Real documents are a few levels deep
// and spend well over 8 bytes on each value.
#pragma once

#include <cstddef>
#include <string_view>

#include "lockferry/result.h"

namespace lockferry::store {

struct DocumentLimits {
  std::size_t max_depth = 8;        // nested arrays and objects; the store's documents use 3
  std::size_t bytes_per_value = 8;  // at most one value (or member) per this many bytes
};

// Counts nesting and values in `text` (strings and their escapes skipped), without allocating.
// The error names `what` (the document's path) and says which limit it broke, where.
Result<void> check_document_shape(std::string_view text, std::string_view what,
                                  const DocumentLimits& limits = {});

// Gives memory that large parses freed back to the system (glibc keeps freed heap otherwise:
// lockferryd stayed at 1.27 GB after one big document). Cheap to call after a read of
// `bytes`; does nothing below 1 MiB.
void release_memory_after(std::size_t bytes);

}  // namespace lockferry::store
