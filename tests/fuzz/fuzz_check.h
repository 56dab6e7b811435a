// SPDX-License-Identifier: Apache-2.0
// What every lockferry fuzz target shares: an invariant check that stops the run with a message
// (libFuzzer then saves the input as a crash), and quiet logging so the fuzzer runs fast.
#pragma once

#include <cstdio>
#include <cstdlib>

#define LF_FUZZ_CHECK(cond, ...)                                                               \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                       \
      std::fprintf(stderr, "\n");                                                              \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)
