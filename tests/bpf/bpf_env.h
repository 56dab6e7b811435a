// SPDX-License-Identifier: Apache-2.0
// Shared state of the privileged test binary: whether BPF can run here, decided once in main().
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace lockferry::test {

// Empty when root and BPF are available; else why not (set by main.cpp before any test runs).
const std::string& bpf_unavailable_reason();
// LOCKFERRY_REQUIRE_BPF=1: a missing BPF environment fails the tests instead of skipping them.
bool bpf_required();

}  // namespace lockferry::test

// Skips (or, when required, fails) the current test if BPF cannot run on this machine.
#define LOCKFERRY_REQUIRE_BPF_OR_SKIP()                                                          \
  do {                                                                                           \
    if (!::lockferry::test::bpf_unavailable_reason().empty()) {                                  \
      if (::lockferry::test::bpf_required())                                                     \
        FAIL() << "LOCKFERRY_REQUIRE_BPF=1 but " << ::lockferry::test::bpf_unavailable_reason(); \
      GTEST_SKIP() << ::lockferry::test::bpf_unavailable_reason();                               \
    }                                                                                            \
  } while (0)
