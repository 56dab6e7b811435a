// SPDX-License-Identifier: Apache-2.0
// Shared state of the privileged test binary: whether BPF can run here, decided once in main().
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "capture/capture.h"

namespace lockferry::test {

// Empty when root and BPF are available; else why not (set by main.cpp before any test runs).
const std::string& bpf_unavailable_reason();
// LOCKFERRY_REQUIRE_BPF=1: a missing BPF environment fails the tests instead of skipping them.
bool bpf_required();

// Empty when hook set `hooks` loads and attaches here; else why not (tried once, then cached).
const std::string& hook_set_unavailable_reason(capture::Mode hooks);
// LOCKFERRY_REQUIRE_HOOKS=fentry,kprobe,tracepoint (as vm.bpf_tests sets in the guest, whose
// kernel takes all three): a listed hook set that does not load fails its tests instead of
// skipping them.
bool hook_set_required(capture::Mode hooks);
// Whether LOCKFERRY_REQUIRE_HOOKS names `name` (a statmon hook set, or a lock hook set: see
// lock_hook_env.h).
bool hook_name_required(std::string_view name);
// For INSTANTIATE_TEST_SUITE_P: the hook sets of `sets` to test on this machine, i.e. those its
// kernel loads and those LOCKFERRY_REQUIRE_HOOKS names. A hook set the kernel refuses (fentry and
// kprobe on the 6.18 CI host) is not a test here, rather than a skipped one: the guest
// (vm.bpf_tests) runs it. Without root or BPF every set is listed, so that each test says why it
// cannot run.
std::vector<capture::Mode> hook_sets_to_test(std::initializer_list<capture::Mode> sets = {
                                                 capture::Mode::fentry, capture::Mode::kprobe,
                                                 capture::Mode::tracepoint});
// For INSTANTIATE_TEST_SUITE_P: the hook set's name as the test's suffix.
std::string hook_set_name(const ::testing::TestParamInfo<capture::Mode>& info);

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

// Skips (or, when required, fails) the current test if hook set `hooks` cannot load here.
#define LOCKFERRY_REQUIRE_HOOKS_OR_SKIP(hooks)                                               \
  do {                                                                                       \
    LOCKFERRY_REQUIRE_BPF_OR_SKIP();                                                         \
    const std::string& why = ::lockferry::test::hook_set_unavailable_reason(hooks);          \
    if (!why.empty()) {                                                                      \
      if (::lockferry::test::hook_set_required(hooks))                                       \
        FAIL() << "LOCKFERRY_REQUIRE_HOOKS names " << ::lockferry::capture::to_string(hooks) \
               << " but " << why;                                                            \
      GTEST_SKIP() << why;                                                                   \
    }                                                                                        \
  } while (0)
